"""The retriever step: a LoRA-tuned retriever, kept only where it finds the gold document of more
validation questions than the base one (recall@k, k = the systems' top-k)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import load_qa


def recall_at_k(index: Path, qa: Path, k: int, retriever: Path | None = None) -> float:
    """Share of the questions whose gold document is among the top-k passages' documents."""
    from retriever import Retriever

    rows = [r for r in load_qa(qa) if r.doc_ids]
    if not rows:
        return float("nan")
    r = Retriever.open(index, retriever=str(retriever) if retriever else None)
    try:
        found = r.search_batch([e.question for e in rows], k)
    finally:
        r.close()
    return sum(bool(set(e.doc_ids) & {p.doc_id for p in ps}) for e, ps in zip(rows, found)) / len(rows)


def _sample(qa: Path, n: int | None, dst: Path, seed: int) -> Path:
    """`qa`, or a seeded sample of `n` of its pairs written to `dst`."""
    import random

    from ragtune.records import iter_jsonl, write_jsonl

    rows = [o for _, o in iter_jsonl(qa)]
    if not n or len(rows) <= n:
        return qa
    write_jsonl(dst, random.Random(seed).sample(rows, n))
    return dst


def choose_retriever(docs: str, out: Path, train_qa: Path, val_qa: Path, cfg: Any, progress: bool) -> dict:
    """Train the retriever on `train_qa`, index the documents with it, and keep it when its validation
    recall@k beats the base index's; the tuned index and retriever are removed when it is not kept."""
    from ingest import ingest
    from tuner import train_retriever

    tuned_dir, tuned_index = out / "retriever", out / "index-tuned"
    for d in (tuned_dir, tuned_index):
        shutil.rmtree(d, ignore_errors=True)
    k = cfg.top_k
    before = recall_at_k(out / "index-base", val_qa, k)
    train_qa = _sample(train_qa, cfg.retriever_pairs, out / "retriever-data.jsonl", cfg.seed)
    try:
        res = train_retriever(train_qa, out / "index-base", tuned_dir, seed=cfg.seed, recall_k=k)
    except RagtuneError as e:  # too few pairs to train on: the base retriever stays, and the report says why
        return {"kept": False, "recall_base": before, "text": f"retriever not tuned: {e}"}
    ingest([docs], tuned_index, retriever=str(tuned_dir), full=True, show_progress=progress)
    after = recall_at_k(tuned_index, val_qa, k, tuned_dir)
    kept = after > before
    if not kept:
        shutil.rmtree(tuned_index, ignore_errors=True)
    verdict = "kept" if kept else "not kept (the base retriever serves)"
    return {
        "kept": kept,
        "recall_base": before,
        "recall_tuned": after,
        "train_seconds": res.train_seconds,
        "text": f"validation recall@{k}: base {before:.3f}, tuned {after:.3f}: {verdict}",
    }
