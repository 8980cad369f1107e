"""Report charts (matplotlib, Agg backend): PNG bytes, one function per chart; None when not applicable."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def metric_by_system(split: Mapping[str, Any], metrics=("exact_match", "f1", "contains")) -> bytes | None:
    systems = split["systems"]
    if not systems:
        return None
    plt = _plt()
    names = list(systems)
    metrics = [m for m in metrics if any(m in systems[n]["metrics"] for n in names)]
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(names), 3.4))
    w = 0.8 / max(len(metrics), 1)
    for j, m in enumerate(metrics):
        xs, ys, errs = [], [], [[], []]
        for i, n in enumerate(names):
            v = systems[n]["metrics"].get(m)
            if v is None:
                continue
            xs.append(i + (j - (len(metrics) - 1) / 2) * w)
            ys.append(v["mean"])
            errs[0].append(max(v["mean"] - v["low"], 0))
            errs[1].append(max(v["high"] - v["mean"], 0))
        ax.bar(xs, ys, w, yerr=errs, capsize=3, label=m, color=COLORS[j % len(COLORS)])
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("percent (95% CI)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title(f"Answer quality by system (n={split['qa']['n']})")
    return _png(fig)


def freshness(split: Mapping[str, Any]) -> bytes | None:
    systems = {n: s["freshness"] for n, s in split["systems"].items() if "freshness" in s}
    if not systems:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 1.2 * len(systems), 3.2))
    bottom = [0.0] * len(systems)
    for j, label in enumerate(("new", "both", "stale", "neither")):
        vals = [100.0 * f[label] / max(f["n"], 1) for f in systems.values()]
        ax.bar(
            list(systems),
            vals,
            bottom=bottom,
            label=label,
            color={"new": "#55A868", "both": "#CCB974", "stale": "#C44E52", "neither": "#8C8C8C"}[label],
        )
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("% of changed facts")
    ax.set_title("Freshness: new vs stale answers after the index refresh")
    ax.legend(fontsize=8, loc="upper right")
    ax.tick_params(axis="x", rotation=20)
    return _png(fig)


def forgetting(measurements: Sequence[Mapping[str, Any]]) -> bytes | None:
    """The base and each fine-tuned model on the general held-out set: answer contained, perplexity."""
    if not measurements:
        return None
    plt = _plt()
    names = ["base"] + [str(f.get("name") or "fine-tuned") for f in measurements]
    fig, axes = plt.subplots(1, 2, figsize=(3.6 + 1.4 * len(names), 3.2))
    first = (
        ("contained", "answer contained (%)") if "contained" in measurements[0]["delta"] else ("f1", "F1 (%)")
    )
    for ax, (key, label) in zip(axes, (first, ("perplexity", "answer perplexity"))):
        vals = [measurements[0]["base"][key]] + [f["ft"][key] for f in measurements]
        ax.bar(names, vals, color=COLORS[: len(names)])
        deltas = "\n".join(
            f"{n} Δ {f['delta'][key]['diff']:+.2f} [{f['delta'][key]['low']:+.2f}, {f['delta'][key]['high']:+.2f}]"
            for n, f in zip(names[1:], measurements)
        )
        ax.set_title(f"{label}\n{deltas}", fontsize=8)
    n = measurements[0]["delta"][first[0]]["n"]
    fig.suptitle(f"Forgetting on the general held-out set (n={n})", fontsize=10)
    return _png(fig)


def latency(split: Mapping[str, Any]) -> bytes | None:
    systems = {
        n: s["cost"]
        for n, s in split["systems"].items()
        if s["cost"].get("latency_p50_s") == s["cost"].get("latency_p50_s")
    }  # drop NaN
    if not systems:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 1.2 * len(systems), 3.0))
    xs = range(len(systems))
    ax.bar([x - 0.2 for x in xs], [c["latency_p50_s"] * 1000 for c in systems.values()], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [c["latency_p95_s"] * 1000 for c in systems.values()], 0.4, label="p95")
    ax.set_xticks(list(xs), list(systems), rotation=20)
    ax.set_ylabel("latency per question (ms)")
    ax.set_title("Latency")
    ax.legend(fontsize=8)
    return _png(fig)


def recall_curve(split: Mapping[str, Any]) -> bytes | None:
    systems = {
        n: s for n, s in split["systems"].items() if any(k.startswith("recall@") for k in s["metrics"])
    }
    if not systems:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for j, (n, s) in enumerate(systems.items()):
        m, depth = s["metrics"], s["spec"]["top_k"]
        ks = sorted(k for k in (int(k.split("@")[1]) for k in m if k.startswith("recall@")) if k <= depth)
        ax.errorbar(
            ks,
            [m[f"recall@{k}"]["mean"] for k in ks],
            yerr=[
                [m[f"recall@{k}"]["mean"] - m[f"recall@{k}"]["low"] for k in ks],
                [m[f"recall@{k}"]["high"] - m[f"recall@{k}"]["mean"] for k in ks],
            ],
            marker="o",
            capsize=3,
            label=n,
            color=COLORS[j % len(COLORS)],
        )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("k (passages given to the generator)")
    ax.set_ylabel("recall@k of gold documents")
    ax.set_ylim(0, 1.05)
    ax.set_title("Retrieval recall@k")
    ax.legend(fontsize=8)
    return _png(fig)
