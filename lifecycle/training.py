"""The generator step: LoRA (RAFT-style or closed-book) on the synthetic training pairs, then export.

An interrupted training resumes from its last checkpoint when the rerun has the same key (recorded beside
the checkpoints); a changed key starts afresh. The export is rebuilt whole each time it runs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifecycle.hashes import file_hash
from lifecycle.steps import key_of

KEY_FILE = ".ragtune-step-key"
# Tokens per forward pass when training (padded to the longest example): RAFT on 50 Wikipedia paragraphs
# (bench/run_squad.py's run; its longest example is 513-1,024 tokens) peaked at 16.0 GB RSS as one batch of 8,
# 8.5 GB as the 2 accumulated halves of 4 that this limit gives, 5.5 GB as 4 quarters, each split 12-14%
# faster (bench/train_memory.py).
MAX_BATCH_TOKENS = 4096


def feedback_tasks(
    train_qa: Path, out: Path, mode: str, feedback_db: str | None, echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The training tasks: the run's pairs, plus (with --feedback-db) the corrections users typed, exported
    by `ragtune feedback export` and weighted by their count (each row seen once per epoch)."""
    tasks: list[dict[str, Any]] = [{"data": str(train_qa), "mode": mode}]
    if not feedback_db:
        return tasks
    from ragtune.records import iter_jsonl
    from tuner.feedback_data import export_feedback

    summary = export_feedback(feedback_db, out / "qa" / "feedback")
    n_fb, n_run = summary.sft["train"], sum(1 for _ in iter_jsonl(train_qa))
    echo(f"    feedback: {n_fb} corrections from {feedback_db} join {n_run} training pairs")
    if n_fb:
        tasks[0]["weight"] = n_run
        tasks.append({"data": summary.files["sft.jsonl"], "mode": mode, "weight": n_fb})
    return tasks


def train_and_export(
    base: Path,
    train_qa: Path,
    out: Path,
    kind: str,
    mode: str,
    epochs: float,
    cfg: Any,
    *,
    learning_rate: float | None = None,
    index: Path | None,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    from tuner import export_model, train_generator

    adapter, model = out / "adapters" / kind, out / "models" / kind
    data = feedback_tasks(train_qa, out, mode, getattr(cfg, "feedback_db", None), echo)
    lr = learning_rate or cfg.learning_rate  # a kind's own (RunConfig.tuning), else the run's
    key = key_of([str(base), str(train_qa), kind, mode, epochs, cfg.lora_r, lr, cfg.top_k,
                  cfg.seed, str(index), MAX_BATCH_TOKENS, *(file_hash(t["data"]) for t in data[1:])])  # fmt: skip
    marker = adapter / KEY_FILE
    resume = marker.is_file() and marker.read_text() == key
    if not resume:
        shutil.rmtree(adapter, ignore_errors=True)
        adapter.mkdir(parents=True)
        marker.write_text(key)
    extra = {"index": str(index), "k": cfg.top_k} if mode == "raft" else {}
    res = train_generator(
        str(base),
        None,
        str(adapter),
        tasks=data,
        method="lora",
        mode=mode,
        epochs=epochs,
        learning_rate=lr,
        lora_r=cfg.lora_r,
        lora_alpha=2 * cfg.lora_r,
        batch_size=8,
        max_batch_tokens=MAX_BATCH_TOKENS,
        val_fraction=0.0,
        seed=cfg.seed,
        resume=resume,
        **extra,
    )
    m = res.metrics
    echo(
        f"    {res.n_train} examples, {res.steps} steps in {res.train_seconds:.0f} s "
        f"({res.tokens_per_second:.0f} tokens/s); loss {m['train_loss_first']:.3f} -> {m['train_loss_last']:.3f}"
    )
    shutil.rmtree(model, ignore_errors=True)
    export_model(res.out_dir, model)
    keep = ("steps", "train_seconds", "tokens_per_second", "train_loss_first", "train_loss_last", "n_train")
    return {**{k: m[k] for k in keep if k in m}, "epochs": epochs, "resumed": resume}
