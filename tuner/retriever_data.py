"""Training data for the retriever: question/positive/hard-negative triples mined from an index.

The positive for a question is the best-scoring chunk of one of its gold documents; hard negatives
are the best-scoring chunks of other documents (never a gold one, never the positive's text).
Recall@k is measured at document level the way BEIR aggregates chunked documents: a document's score
is the maximum over its chunks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ragtune.errors import RagtuneError
from ragtune.records import QAExample


@dataclass(frozen=True)
class ChunkTable:
    """All chunks of one index version, in a fixed order, with their document ids."""

    chunk_ids: list[str]
    doc_ids: list[str]
    texts: list[str]

    def __post_init__(self) -> None:
        if not self.texts:
            raise RagtuneError("the index holds no chunks; ingest documents before tuning the retriever")


@dataclass(frozen=True)
class Triple:
    question: str
    positive: str
    negatives: tuple[str, ...]


def check_gold(examples: list[QAExample], table: ChunkTable, where: str) -> None:
    """Every example needs gold doc_ids that the index knows; say which ones do not."""
    known = set(table.doc_ids)
    for ex in examples:
        if not ex.doc_ids:
            raise RagtuneError(
                f"{where}: example {ex.id!r} has no `doc_ids`; the retriever learns from gold documents"
            )
        if not known.intersection(ex.doc_ids):
            raise RagtuneError(
                f"{where}: example {ex.id!r} names doc_ids {list(ex.doc_ids)} that the index does not hold; "
                "ingest those documents or fix the ids"
            )


def split_by_document(examples: list[QAExample], val_fraction: float, seed: int) -> tuple[list, list]:
    """Split so that no gold document has questions on both sides (a seeded hash of the first doc id).

    Questions that share any document are kept together via their first gold document; a question
    whose other gold documents land elsewhere is rare in QA sets and harmless for retrieval recall.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise RagtuneError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    train, val = [], []
    for ex in examples:
        h = hashlib.sha256(f"{seed}:{ex.doc_ids[0]}".encode()).digest()
        (val if int.from_bytes(h[:8], "big") / 2**64 < val_fraction else train).append(ex)
    if val_fraction > 0 and (not train or not val):
        raise RagtuneError(
            f"the document-level split left {len(train)} training and {len(val)} validation questions; "
            "use more documents or another --val-fraction"
        )
    return train, val


def mine_triples(
    examples: list[QAExample],
    q_emb: np.ndarray,
    c_emb: np.ndarray,
    table: ChunkTable,
    hard_negatives: int,
    lexical: list[np.ndarray] | None = None,
    kind: str = "dense",
) -> list[Triple]:
    """`lexical` (table rows per question, best BM25 first) ranks the candidates for kind bm25 or hybrid."""
    scores = q_emb @ c_emb.T
    doc_arr = np.asarray(table.doc_ids)
    triples = []
    for i, ex in enumerate(examples):
        gold = np.isin(doc_arr, ex.doc_ids)
        order = mining_order(scores[i], lexical[i] if lexical is not None else None, kind)
        pos = next(j for j in order if gold[j])
        negs: list[str] = []
        for j in order:
            if len(negs) >= hard_negatives:
                break
            if not gold[j] and table.texts[j] != table.texts[pos] and table.texts[j] not in negs:
                negs.append(table.texts[j])
        triples.append(Triple(ex.question, table.texts[pos], tuple(negs)))
    return triples


def mining_order(scores: np.ndarray, lexical: np.ndarray | None, kind: str, depth: int = 100) -> np.ndarray:
    """Table rows in the order the miner walks them: dense, BM25 or both fused (RRF), then the rest by dense."""
    dense = np.argsort(-scores, kind="stable")
    if kind == "dense" or lexical is None:
        return dense
    head = lexical
    if kind == "hybrid":
        from retriever import fuse

        top = dense[:depth]
        head = np.asarray(fuse((top, scores[top]), (lexical, np.zeros(len(lexical))), depth, "rrf", 0.5)[0])
    head = np.asarray(head, dtype=np.int64)
    return np.concatenate([head, dense[~np.isin(dense, head)]])


def doc_recall(
    examples: list[QAExample], q_emb: np.ndarray, c_emb: np.ndarray, table: ChunkTable, k: int
) -> float:
    """Mean over questions of |gold ∩ top-k documents| / |gold|, documents scored by their best chunk."""
    if not examples:
        return float("nan")
    docs = sorted(set(table.doc_ids))
    col = {d: n for n, d in enumerate(docs)}
    chunk_doc = np.fromiter((col[d] for d in table.doc_ids), dtype=np.int64, count=len(table.doc_ids))
    scores = q_emb @ c_emb.T
    total = 0.0
    for i, ex in enumerate(examples):
        doc_scores = np.full(len(docs), -np.inf, dtype=np.float32)
        np.maximum.at(doc_scores, chunk_doc, scores[i])
        top = {docs[j] for j in np.argsort(-doc_scores, kind="stable")[:k]}
        gold = set(ex.doc_ids)
        total += len(gold & top) / len(gold)
    return total / len(examples)
