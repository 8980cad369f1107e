"""BEIR folders: load (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and evaluate an index on them.

Follows BEIR's `EvaluateRetrieval`: pytrec_eval nDCG@k/Recall@k, MRR@k, documents split into chunks
scored by their best chunk (max), and results whose doc id equals the query id dropped
(`ignore_identical_ids=True`, BEIR's and MTEB's default).
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eval.ir import aggregate_retrieval, doc_scores, retrieval_metrics
from ragtune.errors import RagtuneError
from ragtune.records import RecordError, iter_jsonl

logger = logging.getLogger(__name__)

BEIR_KS = (1, 3, 5, 10, 100)
# Chunks fetched per query = CHUNK_FACTOR × the largest k, so that after folding chunks into documents
# at least k distinct documents remain even when documents were split into a few chunks each.
CHUNK_FACTOR = 3


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        for lineno, row in enumerate(reader, 1):
            row = [c.strip() for c in row]
            if not row or not any(row):
                continue
            if lineno == 1 and not row[-1].lstrip("-").isdigit():
                continue  # header "query-id corpus-id score"
            if len(row) != 3 or not row[2].lstrip("-").isdigit():
                raise RagtuneError(
                    f"{path}:{lineno}: expected `query-id<TAB>corpus-id<TAB>score`, got {row!r}"
                )
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    if not qrels:
        raise RagtuneError(f"{path} holds no relevance judgements")
    return qrels


def load_beir(beir_dir: str | Path, split: str = "test", with_corpus: bool = False) -> dict[str, Any]:
    """{"queries": {id: text}, "qrels": {qid: {docid: rel}}, "corpus_ids": set, "corpus"?: {id: {...}}}."""
    d = Path(beir_dir)
    need = [d / "queries.jsonl", d / "qrels" / f"{split}.tsv", d / "corpus.jsonl"]
    for p in need:
        if not p.is_file():
            raise RagtuneError(
                f"{d} is not a BEIR folder: {p} is missing (expected corpus.jsonl, queries.jsonl, "
                f"qrels/{split}.tsv)"
            )
    try:
        queries = {str(o["_id"]): str(o.get("text", "")) for _, o in iter_jsonl(need[0])}
        corpus = {
            str(o["_id"]): {"title": o.get("title", ""), "text": o.get("text", "")}
            for _, o in iter_jsonl(need[2])
        }
    except (RecordError, KeyError) as e:
        raise RagtuneError(f"{d}: malformed BEIR file ({e}); every line needs `_id`") from None
    qrels = load_qrels(need[1])
    missing_q = sorted(set(qrels) - set(queries))
    if missing_q:
        raise RagtuneError(f"{need[1]} names queries not in queries.jsonl, e.g. {missing_q[:5]}")
    out = {"queries": {q: queries[q] for q in qrels}, "qrels": qrels, "corpus_ids": set(corpus)}
    if with_corpus:
        out["corpus"] = corpus
    return out


def evaluate_beir(
    beir_dir: str | Path,
    index_dir: str | Path,
    retriever: str | None = None,
    split: str = "test",
    ks: Iterable[int] = BEIR_KS,
    ignore_identical_ids: bool = True,
    batch_size: int = 64,
    progress: bool = False,
    mode: Any = None,
) -> dict[str, Any]:
    """Retrieval metrics of an index on a BEIR split: {"metrics", "per_query", "n_queries", "index_version", ...}.

    `mode`: a retriever.RetrievalMode or a kind (dense, bm25, hybrid); None: the retriever's default."""
    from retriever import Retriever

    data = load_beir(beir_dir, split)
    ks = tuple(sorted({int(k) for k in ks}))
    r = Retriever.open(index_dir, retriever=retriever, mode=mode)
    try:
        known = set(r.index.documents)
        judged = {dd for docs in data["qrels"].values() for dd in docs}
        absent = judged - known
        if known and len(absent) == len(judged):
            raise RagtuneError(
                f"index {index_dir} holds none of the documents {beir_dir}'s qrels judge; ingest "
                f"{Path(beir_dir) / 'corpus.jsonl'} into it first"
            )
        qids = list(data["queries"])
        k_chunks = max(ks) * CHUNK_FACTOR
        run: dict[str, dict[str, float]] = {}
        t0 = time.perf_counter()
        from tqdm.auto import tqdm

        for i in tqdm(range(0, len(qids), batch_size), desc="retrieval", disable=not progress, unit="batch"):
            batch = qids[i : i + batch_size]
            for q, passages in zip(batch, r.search_batch([data["queries"][q] for q in batch], k_chunks)):
                docs = doc_scores(passages)
                if ignore_identical_ids:
                    docs.pop(q, None)
                run[q] = dict(sorted(docs.items(), key=lambda kv: -kv[1])[: max(ks)])
        elapsed = time.perf_counter() - t0
        per_query = retrieval_metrics(data["qrels"], run, ks)
        return {
            "beir_dir": str(beir_dir),
            "split": split,
            "index": str(index_dir),
            "index_version": r.version,
            "retriever": r.encoder.fingerprint,
            "retrieval": {**r.mode.to_dict(), "kind": r.kind()},
            "n_queries": len(qids),
            "judged_docs_missing": len(absent),
            "chunks_per_query": k_chunks,
            "search_s": elapsed,
            "metrics": aggregate_retrieval(per_query),
            "per_query": per_query,
        }
    finally:
        r.close()
