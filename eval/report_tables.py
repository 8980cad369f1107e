"""Tables and plain-language findings of the report, from a results split: (header, rows)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

Table = tuple[list[str], list[list[Any]]]
NAMES = {
    "exact_match": "EM",
    "f1": "F1",
    "rouge_l": "ROUGE-L",
    "contains": "contains",
    "judge": "judge",
    "grounded": "grounded",
}


def _ci(v: Mapping[str, Any] | None, digits: int = 1) -> str:
    if not v or v.get("mean") is None or v["mean"] != v["mean"]:
        return "–"
    return f"{v['mean']:.{digits}f} [{v['low']:.{digits}f}, {v['high']:.{digits}f}]"


def _num(v: Any, fmt: str = "{:.3g}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return fmt.format(v) if isinstance(v, (int, float)) else str(v)


def system_table(split: Mapping[str, Any]) -> Table:
    judged = any("judge" in s["metrics"] for s in split["systems"].values())
    answer = ("exact_match", "f1", "rouge_l", "contains") + (("judge",) if judged else ())
    header = ["system", "mode", "retrieval", *(NAMES[m] for m in answer)]
    header += ["grounded", "recall@top-k", "MRR@10", "nDCG@10"]
    rows = []
    for name, s in split["systems"].items():
        m, spec = s["metrics"], s["spec"]
        rows.append(
            [
                name,
                s["describe"].get("mode", ""),
                f"top {spec['top_k']}" if spec["retrieval"] else "off",
                *(_ci(m.get(a)) for a in answer),
                _ci(m.get("grounded")),
                _ci(m.get(f"recall@{spec['top_k']}"), 3),
                _ci(m.get("mrr@10"), 3),
                _ci(m.get("ndcg@10"), 3),
            ]
        )
    return header, rows


REPORTED_DIFFS = ("exact_match", "f1", "ndcg@10")  # the rest (ROUGE-L, contains, recall, MRR) in results.json


def comparison_table(
    split: Mapping[str, Any], keep: Collection[str] = (), metrics: Collection[str] = REPORTED_DIFFS
) -> Table:
    """The stored comparisons on `metrics`; with `keep`, only the pairs that involve one of those systems."""
    header = ["a − b", "metric", "difference", "95% CI", "n", "CI excludes 0"]
    rows = [
        [
            f"{c['a']} − {c['b']}",
            NAMES.get(c["metric"], c["metric"]),
            f"{c['diff']:+.3g}",
            f"[{c['low']:+.3g}, {c['high']:+.3g}]",
            c["n"],
            "yes" if c["significant"] else "no",
        ]
        for c in split["comparisons"]
        if c["metric"] in metrics and (not keep or c["a"] in keep or c["b"] in keep)
    ]
    return header, rows


def freshness_table(split: Mapping[str, Any]) -> Table:
    header = [
        "system",
        "answer: new fact",
        "stale fact",
        "both",
        "neither",
        "n",
        "new rate % [CI]",
        "stale rate % [CI]",
        "passages: new / stale / both / neither",
    ]
    rows = [
        [
            n,
            f["new"],
            f["stale"],
            f["both"],
            f["neither"],
            f["n"],
            _ci(f["new_rate"]),
            _ci(f["stale_rate"]),
            " / ".join(str(f["passages"][k]) for k in ("new", "stale", "both", "neither"))
            if "passages" in f
            else "–",
        ]
        for n, s in split["systems"].items()
        if (f := s.get("freshness"))
    ]
    return header, rows


def _bytes(v: Any) -> str:
    return "–" if v is None else f"{v / 1e6:.2f} MB"


def cost_table(split: Mapping[str, Any]) -> Table:
    header = [
        "system",
        "latency p50 (ms)",
        "latency p95 (ms)",
        "tokens/s",
        "training time (s)",
        "trainable params",
        "adapter size",
    ]
    rows = []
    for n, s in split["systems"].items():
        c = s["cost"]
        rows.append(
            [
                n,
                _num(c.get("latency_p50_s") and c["latency_p50_s"] * 1000, "{:.1f}"),
                _num(c.get("latency_p95_s") and c["latency_p95_s"] * 1000, "{:.1f}"),
                _num(c.get("tokens_per_s"), "{:.1f}"),
                _num(c.get("train_time_s"), "{:.1f}"),
                _num(c.get("trainable_params"), "{:,}"),
                _bytes(c.get("adapter_bytes")),
            ]
        )
    return header, rows


def retrieval_cell(spec: Mapping[str, Any], describe: Mapping[str, Any]) -> str:
    """How a system retrieved: off, dense, bm25, or hybrid with its fusion (weighted: the dense share).

    In-process systems record the kind their retriever ran (`retrieval_kind`: an index without a lexical
    part falls back to dense); a server asked for no mode used its own, whose fusion it does not report."""
    if not spec.get("retrieval"):
        return "off"
    kind = describe.get("retrieval_kind") or spec.get("retrieval_mode")
    if kind is None:
        return "the server's default" if describe.get("mode") == "http" else "–"
    if kind != "hybrid":
        return kind
    if describe.get("mode") == "http":  # the chat request names the kind only: the server fuses its own way
        return "hybrid (the server's fusion)"
    if spec.get("fusion", "rrf") == "weighted":
        return f"hybrid, weighted (dense {spec.get('fusion_weight', 0.5):g})"
    return "hybrid, RRF"


def config_table(split: Mapping[str, Any]) -> Table:
    header = [
        "system",
        "model (folder name) / url",
        "model sha256",
        "index version",
        "retriever",
        "retrieval",
        "few-shot k (seed)",
        "cached",
    ]
    rows = []
    for n, s in split["systems"].items():
        spec, d = s["spec"], s["describe"]
        rows.append(
            [
                n,
                Path(spec["model"]).name if spec.get("model") else spec.get("url"),
                (d.get("model_sha256") or "–")[:12],
                d.get("index_version") or spec.get("index_version") or "–",
                (d.get("retriever_fingerprint") or spec.get("retriever") or "–")[:16],
                retrieval_cell(spec, d),
                f"{spec['fewshot']} ({spec['fewshot_seed']})" if spec["fewshot"] else "0",
                f"{s['cached']}/{s['n']}",
            ]
        )
    return header, rows


def disagreement_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    if not rows:
        return ["id"], []
    names = list(rows[0]["answers"])
    header = ["id", "question", "gold"] + names
    out = [
        [r["id"], r["question"], " / ".join(r["gold"])]
        + [("✓ " if n in r["correct"] else "✗ ") + r["answers"][n] for n in names]
        for r in rows
    ]
    return header, out


def forgetting_table(measurements: Sequence[Mapping[str, Any]]) -> Table:
    """One row per measure: the base, then each fine-tuned model and its difference from the base."""
    names = [str(f.get("name") or "fine-tuned") for f in measurements]
    header = ["measure", "base"] + [h for n in names for h in (n, f"{n} − base [95% CI]")]
    rows = []
    for key, label in (
        ("perplexity", "answer perplexity"),
        ("exact_match", "EM %"),
        ("f1", "F1 %"),
        ("contained", "answer contained %"),
    ):
        if any(key not in f["delta"] for f in measurements):  # results from before `contained` was measured
            continue
        row = [label, f"{measurements[0]['base'][key]:.3g}"]
        for f in measurements:
            d = f["delta"][key]
            row += [f"{f['ft'][key]:.3g}", f"{d['diff']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]"]
        rows.append(row)
    return header, rows


def findings(split: Mapping[str, Any]) -> list[str]:
    """Plain sentences on what the numbers show (whatever it is), from the CIs."""
    systems = split["systems"]
    scored = [(n, s["metrics"]["f1"]["mean"]) for n, s in systems.items() if "f1" in s["metrics"]]
    if not scored:
        return []
    best = max(scored, key=lambda x: x[1])
    if all(v == best[1] for _, v in scored):
        lines = [f"All systems have the same F1 ({best[1]:.1f})."]
    else:
        lines = [f"Highest F1: {best[0]} ({best[1]:.1f})."]
    sig = [c for c in split["comparisons"] if c["metric"] == "f1" and c["significant"]]
    flat = [c for c in split["comparisons"] if c["metric"] == "f1" and not c["significant"]]
    if sig:
        lines.append(
            "F1 differences whose 95% CI excludes zero: "
            + "; ".join(
                f"{c['a']} − {c['b']} = {c['diff']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]" for c in sig
            )
            + "."
        )
    if flat:
        lines.append(
            "Not distinguishable at this n (CI includes zero): "
            + ", ".join(f"{c['a']} vs {c['b']}" for c in flat)
            + "."
        )
    fresh = [
        f"{n} {f['new']} new / {f['stale']} stale" for n, s in systems.items() if (f := s.get("freshness"))
    ]
    if fresh:
        n_fresh = next(s["freshness"]["n"] for s in systems.values() if "freshness" in s)
        lines.append(
            f"Changed facts (n={n_fresh}) answered with the new vs the stale value: " + "; ".join(fresh) + "."
        )
    return lines
