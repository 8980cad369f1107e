"""The report's verdict: which system to deploy, read off the paired comparisons already in the results.

`compute_verdict(results)` returns plain data (JSON-ready); `verdict_blocks(v)` renders it into the report's
blocks. Per split (held-out "test" first, then "freshness", then any other):

- the verdict metric is exact match; where the top two systems tie on it (paired difference exactly 0)
  F1 decides between the tied ones, and the split says so;
- the best system is the one with the highest mean; the runner-up the next one (ties: the next metric,
  then the order the systems were listed in);
- best vs runner-up, best vs base, and the lists of systems the best beats or cannot be told apart
  from are the stored paired bootstrap comparisons (`splits[s]["comparisons"]`, diff = a − b),
  turned around (diff → −diff, [low, high] → [−high, −low]) when stored the other way; nothing is
  recomputed;
- one cost line per system: training time, latency p50 (held-out split), adapter size, and forgetting
  for the systems that run the model `results["forgetting"]` measured (eval/forget.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRIMARY = "exact_match"
CHAIN = ("exact_match", "f1")  # verdict metric, then what breaks a tie on it
METRIC_NAMES = {"exact_match": "EM", "f1": "F1"}
SPLIT_LABELS = {"test": "held-out questions", "freshness": "changed facts after the index refresh"}
EPS = 1e-9


def _mean(system: Mapping[str, Any], metric: str) -> float | None:
    v = (system.get("metrics") or {}).get(metric) or {}
    m = v.get("mean")
    return None if m is None or math.isnan(m) else float(m)


def comparison(split: Mapping[str, Any], x: str, y: str, metric: str) -> dict[str, Any] | None:
    """The stored paired comparison x − y on `metric` (turned around if stored as y − x); None if absent."""
    for c in split.get("comparisons") or []:
        if c["metric"] != metric:
            continue
        if (c["a"], c["b"]) == (x, y):
            return {k: c[k] for k in ("a", "b", "metric", "diff", "low", "high", "n", "significant")}
        if (c["a"], c["b"]) == (y, x):
            return {
                "a": x,
                "b": y,
                "metric": metric,
                "diff": 0.0 - c["diff"],
                "low": 0.0 - c["high"],
                "high": 0.0 - c["low"],
                "n": c["n"],
                "significant": c["significant"],
            }
    return None


def base_system(split: Mapping[str, Any]) -> str | None:
    """The system named `base`; else the one without retrieval or few-shot whose model the others name as base."""
    systems = split.get("systems") or {}
    if "base" in systems:
        return "base"
    bases = {s["spec"].get("base_model") for s in systems.values() if s.get("spec", {}).get("base_model")}
    for name, s in systems.items():
        spec = s.get("spec", {})
        if spec.get("model") in bases and not spec.get("retrieval") and not spec.get("fewshot"):
            return name
    return None


def _ranked(split: Mapping[str, Any]) -> list[str]:
    systems = split.get("systems") or {}
    names = [n for n in systems if _mean(systems[n], PRIMARY) is not None]
    order = {n: i for i, n in enumerate(names)}

    def key(n: str) -> tuple:
        return tuple(-round(_mean(systems[n], m) or 0.0, 9) for m in CHAIN) + (order[n],)

    return sorted(names, key=key)


def split_verdict(split_name: str, split: Mapping[str, Any]) -> dict[str, Any] | None:
    """Best system of one split, its runner-up, and how sure the paired comparisons are."""
    systems = split.get("systems") or {}
    ranked = _ranked(split)
    if not ranked:
        return None
    best = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    metric, tied_on = PRIMARY, []
    if runner is not None:  # the verdict metric steps down the chain while the top two tie on it
        for i, m in enumerate(CHAIN):
            c = comparison(split, best, runner, m)
            tied = c is not None and abs(c["diff"]) < EPS  # equal means, whatever the per-question spread
            metric = m
            if not tied or i == len(CHAIN) - 1:
                break
            tied_on.append(m)
    out: dict[str, Any] = {
        "split": split_name,
        "label": SPLIT_LABELS.get(split_name, split_name),
        "n": (split.get("qa") or {}).get("n"),
        "metric": metric,
        "tied_on": tied_on,
        "best": best,
        "best_ci": _ci(systems[best], metric),
        "runner_up": runner,
        "runner_up_ci": _ci(systems[runner], metric) if runner else None,
        "vs_runner_up": comparison(split, best, runner, metric) if runner else None,
    }
    vs = out["vs_runner_up"]
    out["distinguishable"] = None if vs is None else bool(vs["significant"] and vs["diff"] > 0)
    others = [comparison(split, best, n, metric) for n in ranked[1:]]
    out["beats"] = [c["b"] for c in others if c and c["significant"] and c["diff"] > 0]
    out["not_distinguishable_from"] = [c["b"] for c in others if c and not c["significant"]]
    base = base_system(split)
    out["base"] = base
    out["vs_base"] = comparison(split, best, base, metric) if base and base != best else None
    if "freshness" in systems[best]:
        f = systems[best]["freshness"]
        out["freshness"] = {k: f.get(k) for k in ("new", "stale", "both", "neither", "n")}
    out["text"] = _split_text(out)
    return out


def _ci(system: Mapping[str, Any], metric: str) -> dict[str, float] | None:
    v = (system.get("metrics") or {}).get(metric)
    return {k: v[k] for k in ("mean", "low", "high")} if v else None


def _diff(c: Mapping[str, Any], unit: str) -> str:
    return f"{c['diff']:+.1f} {unit} [{c['low']:+.1f}, {c['high']:+.1f}]"


def _split_text(v: Mapping[str, Any]) -> str:
    name = METRIC_NAMES.get(v["metric"], v["metric"])
    unit = f"{name} points"
    ci = v["best_ci"]
    head = (
        f"For {v['label']} ({v['split']}, n={v['n']}) deploy {v['best']}: {name} {ci['mean']:.1f} "
        f"[{ci['low']:.1f}, {ci['high']:.1f}]"
    )
    if v["tied_on"]:
        tied = " and ".join(METRIC_NAMES.get(m, m) for m in v["tied_on"])
        head += (
            f" ({tied} tie{'s' if len(v['tied_on']) == 1 else ''} with {v['runner_up']}; compared on {name})"
        )
    if v["runner_up"] is None:
        return head + "; the only system evaluated."
    vs = v["vs_runner_up"]
    if vs is None:
        parts = [f"no paired comparison with runner-up {v['runner_up']} in the results"]
    elif v["distinguishable"]:
        parts = [f"beats runner-up {v['runner_up']} by {_diff(vs, unit)}"]
    else:
        parts = [f"not distinguishable from {v['runner_up']} ({_diff(vs, unit)}: the CI includes zero)"]
    more = [n for n in v["not_distinguishable_from"] if n != v["runner_up"]]
    if more:
        parts.append("nor from " + ", ".join(more))
    beaten = [n for n in v["beats"] if n != v["runner_up"]]
    if beaten:
        parts.append(("also beats " if v["distinguishable"] else "beats ") + ", ".join(beaten))
    if v["vs_base"] is not None and v["base"] != v["runner_up"]:
        parts.append(f"vs {v['base']} {_diff(v['vs_base'], unit)}")
    text = head + "; " + "; ".join(parts) + "."
    if not v["distinguishable"] and vs is not None:
        text += " Choose on cost (below)."
    f = v.get("freshness")
    if f:
        text += f" It answers {f['new']} of {f['n']} changed facts with the new value, {f['stale']} with the stale one."
    return text


def _name_of(path: Any) -> str | None:
    return Path(str(path)).name if path else None


def forgetting_for(system: Mapping[str, Any], forgetting: Mapping[str, Any]) -> str | None:
    """ "ft" if `system` runs the fine-tuned model forgetting measured, "base" if its base, else None.

    Matched by folder hash, then folder path; over HTTP without a folder, by the served model id (a
    ragtune server names its model after the folder).
    """
    spec, d = system.get("spec") or {}, system.get("describe") or {}
    for role in ("ft", "base"):
        sha, path = forgetting.get(f"{role}_sha256"), forgetting.get(f"{role}_model")
        if d.get("model_sha256"):
            if sha and d["model_sha256"] == sha:
                return role
            continue
        if spec.get("model") and path and Path(spec["model"]).resolve() == Path(path).resolve():
            return role
        if not spec.get("model") and path and d.get("model_id") and d["model_id"] == _name_of(path):
            return role
    return None


def _forgetting_summary(f: Mapping[str, Any]) -> dict[str, Any]:
    g = f.get("forgetting") or {}
    out = {
        "ft_model": f.get("ft_model"),
        "base_model": f.get("base_model"),
        "n": g.get("n") or (f.get("general_qa") or {}).get("n"),
        "f1_points": g.get("f1_points"),
        "f1_low": g.get("low"),
        "f1_high": g.get("high"),
        "contained_points": g.get("contained_points"),
        "contained_low": g.get("contained_low"),
        "contained_high": g.get("contained_high"),
    }
    for role in ("base", "ft"):
        if isinstance(f.get(role), Mapping):
            out[role] = {
                k: f[role][k] for k in ("perplexity", "exact_match", "f1", "contained") if k in f[role]
            }
    gate = f.get("gate") or {}
    if gate.get("max_forgetting") is not None:
        out["gate"] = {"max_forgetting": gate["max_forgetting"], "passed": gate.get("passed")}
    return out


def _forgetting_text(s: Mapping[str, Any]) -> str:
    parts = []
    if s.get("f1_points") is not None:
        parts.append(f"{s['f1_points']:.1f} F1 points [{s['f1_low']:+.1f}, {s['f1_high']:+.1f}]")
    if s.get("contained_points") is not None:
        parts.append(
            f"{s['contained_points']:.1f} answer-contained points "
            f"[{s['contained_low']:+.1f}, {s['contained_high']:+.1f}]"
        )
    text = f"forgets {' and '.join(parts) or 'nothing measured'} vs its base on general QA (n={s['n']})"
    if "gate" in s:
        text += f", gate --max-forgetting {s['gate']['max_forgetting']}: {'passed' if s['gate']['passed'] else 'FAILED'}"
    return text


def _cost_split(results: Mapping[str, Any]) -> str | None:
    splits = results.get("splits") or {}
    return "test" if "test" in splits else next(iter(splits), None)


def cost_lines(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per system: training time, latency p50 (held-out split), adapter size, forgetting where measured."""
    split_name = _cost_split(results)
    if split_name is None:
        return []
    f = results.get("forgetting")
    fsum = _forgetting_summary(f) if f else None
    out = []
    for name, s in results["splits"][split_name]["systems"].items():
        c = s.get("cost") or {}
        role = forgetting_for(s, f) if f else None
        line = {
            "system": name,
            "split": split_name,
            "train_time_s": c.get("train_time_s"),
            "latency_p50_s": c.get("latency_p50_s"),
            "adapter_bytes": c.get("adapter_bytes"),
            "forgetting": fsum if role == "ft" else None,
            "forgetting_role": role or ("unmeasured" if f else None),
        }
        out.append({**line, "text": _cost_text(line)})
    return out


def _cost_text(c: Mapping[str, Any]) -> str:
    lat = c["latency_p50_s"]
    parts = [
        f"latency p50 {lat * 1000:.0f} ms" if lat is not None and not math.isnan(lat) else "latency p50 –",
        f"training {c['train_time_s']:.0f} s"
        if c["train_time_s"] is not None
        else "training time not recorded",
        f"adapter {c['adapter_bytes'] / 1e6:.2f} MB"
        if c["adapter_bytes"] is not None
        else "no adapter recorded",
    ]
    if c["forgetting_role"] == "ft":
        parts.append(_forgetting_text(c["forgetting"]))
    elif c["forgetting_role"] == "base":
        parts.append("runs the base model (the forgetting reference)")
    elif c["forgetting_role"] == "unmeasured":
        parts.append("forgetting not measured")
    return f"{c['system']}: " + "; ".join(parts)


def compute_verdict(results: Mapping[str, Any]) -> dict[str, Any]:
    """What to deploy, per split, with CIs and costs (JSON-ready; `text` fields are the report's sentences)."""
    splits = results.get("splits") or {}
    order = [s for s in ("test", "freshness") if s in splits] + [
        s for s in splits if s not in ("test", "freshness")
    ]
    per_split = {s: v for s in order if (v := split_verdict(s, splits[s])) is not None}
    f = results.get("forgetting")
    costs = cost_lines(results)
    fsum = _forgetting_summary(f) if f else None
    unmatched = fsum is not None and not any(c["forgetting_role"] == "ft" for c in costs)
    tie_broken = [v["split"] for v in per_split.values() if v["tied_on"]]
    metric_text = (
        "Verdict metric: exact match (EM, in points), paired bootstrap 95% CIs of the differences "
        "as stored in results.json (`comparisons`)"
    )
    metric_text += (
        f"; where the top two tie on EM, F1 decides ({', '.join(tie_broken)})."
        if tie_broken
        else "; F1 would decide only where the top two tie on EM."
    )
    out: dict[str, Any] = {
        "metric": PRIMARY,
        "fallback": CHAIN[1],
        "metric_text": metric_text,
        "splits": per_split,
        "costs": costs,
        "forgetting": fsum,
        "cost_split": _cost_split(results),
    }
    if unmatched:
        name = _name_of(fsum["ft_model"]) or "the fine-tuned model"
        out["forgetting_text"] = f"Forgetting of {name}: {_forgetting_text(fsum)}."
    return out


Block = tuple


def verdict_blocks(v: Mapping[str, Any]) -> list[Block]:
    """The verdict as report blocks (see eval/report.py): heading, one sentence per split, cost lines."""
    if not v.get("splits"):
        return []
    out: list[Block] = [("h2", "Verdict")]
    out.extend(("p", s["text"]) for s in v["splits"].values())
    out.append(("p", v["metric_text"]))
    if v["costs"]:
        out.append(
            (
                "p",
                (
                    f"Cost per system (latency on the {v['cost_split']} split; training time and adapter "
                    f"size from each model's ragtune.json, where recorded):"
                ),
            )
        )
        out.append(("ul", [c["text"] for c in v["costs"]]))
    if v.get("forgetting_text"):
        out.append(("p", v["forgetting_text"]))
    return out
