"""The demo's base generator: build it from the general world once, cache it, and measure its reading.

The cache key is the general corpus settings plus the model and training configs, so changing any of
them builds a new base; the same settings reuse `~/.cache/ragtune/base-<hash>` (or $RAGTUNE_CACHE_DIR).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from demo.config import DemoConfig
from demo.general import general_corpus

log = logging.getLogger(__name__)


def cache_root() -> Path:
    from ragtune.settings import cache_dir

    return cache_dir()


def base_key(cfg: DemoConfig) -> str:
    blob = json.dumps({"general": asdict(cfg.general), "model": asdict(cfg.base_model),
                       "train": asdict(cfg.base_train), "seed": cfg.seed, "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def corpus_for(cfg: DemoConfig, out_dir: Path) -> list[Path]:
    g = cfg.general
    return general_corpus(out_dir, n_people=g.n_people, n_heldout=g.n_heldout, n_reading=g.n_reading,
                          n_closed_book=g.n_closed_book, max_passages=g.max_passages,
                          max_questions=g.max_questions, seed=cfg.seed)


def build_or_reuse(cfg: DemoConfig, progress: bool = True) -> tuple[Path, Path, bool]:
    """(model folder, general corpus folder, reused?) for this config's base model."""
    from tuner.base_build import build_base

    root = cache_root() / f"base-{base_key(cfg)}"
    corpus_dir = root / "corpus"
    model_dir = root / "model"
    files = corpus_for(cfg, corpus_dir)  # seconds; deterministic, so the build hash matches a cached model
    reused = (model_dir / "ragtune.json").is_file()
    build_base(files, model_dir, cfg.base_model, cfg.base_train, progress=progress)
    return model_dir, corpus_dir, reused


def general_qa_rows(corpus_dir: Path, n: int) -> list[dict]:
    """Held-out general questions (unseen people) as QA records with the gold passage as `context`."""
    from ragtune.records import iter_jsonl

    rows = []
    for i, (_, obj) in enumerate(iter_jsonl(corpus_dir / "heldout.jsonl")):
        if i >= n:
            break
        user = obj["messages"][-1]["content"]
        question = user.rsplit("Question: ", 1)[1]
        rows.append({"id": f"general-{i:04d}", "question": question, "answer": obj["answer"],
                     "context": obj["gold_text"]})
    return rows
