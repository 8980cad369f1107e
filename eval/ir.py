"""Retrieval metrics against gold document ids, computed the way BEIR/MTEB compute them.

nDCG@k, Recall@k and MRR@k come from `pytrec_eval` (pytrec-eval-terrier wheels), the library BEIR
and MTEB call, so values match theirs. Chunks are folded into documents first with BEIR's rule for
split documents: a document's score is the maximum score of its chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_KS = (1, 5, 10, 100)


def doc_scores(passages: Sequence[Any]) -> dict[str, float]:
    """{doc_id: max chunk score}. Passages without a score get one from their rank (first = highest)."""
    out: dict[str, float] = {}
    n = len(passages)
    for rank, p in enumerate(passages):
        d = p if isinstance(p, dict) else p.to_dict() if hasattr(p, "to_dict") else {"doc_id": p.doc_id}
        doc_id = str(d.get("doc_id") or d.get("id") or "")
        if not doc_id:
            continue
        score = d.get("score")
        score = float(n - rank) if score is None else float(score)
        if doc_id not in out or score > out[doc_id]:
            out[doc_id] = score
    return out


def _trec_order(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    # trec_eval's (and so pytrec_eval's) order: score descending, ties broken by doc id descending.
    return sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


def retrieval_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    ks: Iterable[int] = DEFAULT_KS,
) -> dict[str, dict[str, float]]:
    """Per-query {"ndcg@k", "recall@k", "mrr@k"} for each k (0-1).

    Every query of `qrels` gets a row; a query missing from `run` (or with no results) scores 0,
    as it would if the system returned nothing relevant. MRR@k is the reciprocal rank of the first
    relevant document within the top k (BEIR's `mrr`), computed by pytrec_eval's `recip_rank` on
    the run cut at k.
    """
    import pytrec_eval

    ks = sorted({int(k) for k in ks})
    qrels = {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    run = {
        str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items() if q in qrels and docs
    }
    measures = {"ndcg_cut." + ",".join(map(str, ks)), "recall." + ",".join(map(str, ks))}
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run) if run else {}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    cut = {
        k: rr.evaluate({q: dict(_trec_order(docs)[:k]) for q, docs in run.items()}) if run else {} for k in ks
    }
    out: dict[str, dict[str, float]] = {}
    for q in qrels:
        row: dict[str, float] = {}
        for k in ks:
            row[f"ndcg@{k}"] = full.get(q, {}).get(f"ndcg_cut_{k}", 0.0)
            row[f"recall@{k}"] = full.get(q, {}).get(f"recall_{k}", 0.0)
            row[f"mrr@{k}"] = cut[k].get(q, {}).get("recip_rank", 0.0)
        out[q] = row
    return out


def aggregate_retrieval(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of every metric over the queries (BEIR's average)."""
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    return {m: sum(r[m] for r in per_query.values()) / len(per_query) for m in names}


def qa_retrieval_row(
    gold_doc_ids: Sequence[str], passages: Sequence[Any], ks: Iterable[int] = (1, 5, 10)
) -> dict[str, float] | None:
    """Retrieval metrics of one question's passages against its gold doc ids (None without gold)."""
    if not gold_doc_ids:
        return None
    res = retrieval_metrics({"q": {d: 1 for d in gold_doc_ids}}, {"q": doc_scores(passages)}, ks)
    return res["q"]
