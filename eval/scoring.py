"""Score predictions against QA examples: per question, per system (with CIs) and between systems.

Scales: answer metrics (exact_match, f1, rouge_l, contains, grounded) are reported in percent like
the SQuAD script; retrieval metrics (recall@k, mrr@k, ndcg@k) on 0-1 like BEIR.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from eval.answers import ANSWER_METRICS, score_answer
from eval.ir import qa_retrieval_row
from eval.stats import bootstrap_mean, paired_bootstrap, percentiles
from ragtune.records import QAExample

PERCENT = {"exact_match", "f1", "rouge_l", "contains", "judge", "grounded", "grounding_support"}
RETRIEVAL_KS = (1, 5, 10)
HEADLINE = ("exact_match", "f1", "rouge_l", "contains", "judge")  # judge only where a judge graded


def score_rows(examples: Sequence[QAExample], preds: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per example: id, prediction and every metric that applies (missing prediction = "")."""
    depth = max((len(p.get("passages") or []) for p in preds.values()), default=0)
    ks = sorted(set(RETRIEVAL_KS) | set(range(1, depth + 1)))  # every k up to the passages given: the curve
    rows = []
    for ex in examples:
        p = preds.get(ex.id) or {}
        pred = str(p.get("prediction") or "")
        passages = p.get("passages")
        row: dict[str, Any] = {
            "id": ex.id,
            "prediction": pred,
            "missing": ex.id not in preds,
            **score_answer(pred, ex.answers, passages, ex.stale_answers),
        }
        if passages is not None:
            r = qa_retrieval_row(ex.doc_ids, passages, ks)
            if r is not None:
                row["retrieval"] = r
        rows.append(row)
    return rows


def _mean_pct(values: Sequence[float]) -> float:
    # Sequential sum in question order, as the official SQuAD script accumulates: equal to the bit.
    return 100.0 * sum(values) / len(values) if values else float("nan")


def aggregate(rows: Sequence[Mapping[str, Any]], n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metric means with bootstrap 95% CIs, retrieval means, grounding and freshness counts."""
    out: dict[str, Any] = {"n": len(rows), "missing": sum(bool(r.get("missing")) for r in rows)}
    metrics: dict[str, Any] = {}
    for m in ANSWER_METRICS + ("judge", "grounded", "grounding_support"):
        vals = [r[m] for r in rows if m in r]
        if vals:
            ci = bootstrap_mean(vals, n_resamples, seed, scale=100.0)
            metrics[m] = {**ci, "mean": _mean_pct(vals)}
    ret = [r["retrieval"] for r in rows if "retrieval" in r]
    if ret:
        for m in ret[0]:
            metrics[m] = bootstrap_mean([r[m] for r in ret], n_resamples, seed)
    out["metrics"] = metrics
    out["contains_guarded"] = sum(int(r.get("contains_guarded", 0)) for r in rows)  # refused by the guard
    fresh = [r["freshness"] for r in rows if "freshness" in r]
    if fresh:
        c = Counter(fresh)
        out["freshness"] = {k: c.get(k, 0) for k in ("new", "stale", "both", "neither")} | {"n": len(fresh)}
        out["freshness"]["new_rate"] = bootstrap_mean(
            [f in ("new",) for f in fresh], n_resamples, seed, 100.0
        )
        out["freshness"]["stale_rate"] = bootstrap_mean(
            [f in ("stale",) for f in fresh], n_resamples, seed, 100.0
        )
        ctx = Counter(r["context_freshness"] for r in rows if "context_freshness" in r)
        if ctx:
            out["freshness"]["passages"] = {k: ctx.get(k, 0) for k in ("new", "stale", "both", "neither")}
    return out


def cost(gen_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Latency p50/p95 (s) and tokens/s from the generation rows (cached rows keep their timings)."""
    lat = [float(r["latency_s"]) for r in gen_rows if r.get("latency_s") is not None]
    toks = [int(r["completion_tokens"]) for r in gen_rows if r.get("completion_tokens") is not None]
    # Rows answered in one batch share its wall time; count each batch's time once for throughput.
    wall = sum(
        float(r.get("batch_wall_s", r.get("latency_s") or 0.0))
        for r in gen_rows
        if r.get("batch_first", True)
    )
    out: dict[str, Any] = {f"latency_{k}_s": v for k, v in percentiles(lat).items()}
    out["completion_tokens"] = sum(toks)
    out["tokens_per_s"] = sum(toks) / wall if wall > 0 and toks else None
    out["wall_s"] = wall
    return out


def pairwise(
    per_system: Mapping[str, Sequence[Mapping[str, Any]]],
    n_resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = HEADLINE,
) -> list[dict[str, Any]]:
    """Paired bootstrap CI of every difference between two systems, on every headline metric."""
    out = []
    for a, b in combinations(list(per_system), 2):
        ra, rb = per_system[a], per_system[b]
        for m in metrics:
            if not ra or m not in ra[0]:
                continue
            d = paired_bootstrap([r[m] for r in ra], [r[m] for r in rb], n_resamples, seed, scale=100.0)
            out.append({"a": a, "b": b, "metric": m, **d, "significant": bool(d["low"] > 0 or d["high"] < 0)})
        ka = [r["retrieval"] for r in ra if "retrieval" in r]
        kb = [r["retrieval"] for r in rb if "retrieval" in r]
        if ka and len(ka) == len(kb) == len(ra):
            for m in ("recall@5", "mrr@10", "ndcg@10"):
                d = paired_bootstrap([r[m] for r in ka], [r[m] for r in kb], n_resamples, seed)
                out.append(
                    {"a": a, "b": b, "metric": m, **d, "significant": bool(d["low"] > 0 or d["high"] < 0)}
                )
    return out


def disagreements(
    examples: Sequence[QAExample],
    per_system: Mapping[str, Sequence[Mapping[str, Any]]],
    metric: str = "exact_match",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Questions where the systems do not all agree on `metric` (right vs wrong), with each answer."""
    out = []
    names = list(per_system)
    for i, ex in enumerate(examples):
        vals = {n: per_system[n][i][metric] for n in names}
        if len(set(vals.values())) > 1:
            out.append(
                {
                    "id": ex.id,
                    "question": ex.question,
                    "gold": list(ex.answers),
                    "answers": {n: per_system[n][i]["prediction"] for n in names},
                    "correct": [n for n in names if vals[n] >= 1.0],
                }
            )
            if limit and len(out) >= limit:
                break
    return out
