"""Trainer plumbing: training arguments, checkpoints that survive kill -9, a quiet progress bar.

The HF Trainer gives checkpoints with optimizer, scheduler and RNG state, per-epoch validation,
best-checkpoint selection and early stopping, and runs unchanged under torchrun / accelerate
(DDP, FSDP, DeepSpeed). This module only chooses its arguments for ragtune.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints whose trainer_state.json (written last by the Trainer) parses, oldest first.

    A process killed while writing a checkpoint leaves it without that file; it is skipped.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        m = _CKPT.match(p.name)
        if not m or not p.is_dir():
            continue
        try:
            json.loads((p / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            log.warning("skipping incomplete checkpoint %s (no readable trainer_state.json)", p)
            continue
        found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def micro_batches(batch_size: int, grad_accum: int, longest: int, max_tokens: int | None) -> tuple[int, int]:
    """(examples per forward, steps accumulated) holding batch_size x grad_accum examples per optimizer step,
    with at most `max_tokens` per forward when every example were `longest` tokens: the largest divisor of
    batch_size that fits (1 when none does)."""
    if not max_tokens or batch_size * longest <= max_tokens:
        return batch_size, grad_accum
    micro = max(
        d for d in range(1, batch_size + 1) if batch_size % d == 0 and (d == 1 or d * longest <= max_tokens)
    )
    return micro, grad_accum * batch_size // micro


def training_arguments(
    cfg: Any,
    run_dir: Path,
    dtype: Any,
    has_val: bool,
    cls: Any = None,
    batch: tuple[int, int] | None = None,
    **extra: Any,
) -> Any:
    """The Trainer's arguments for a run (`cls`: TrainingArguments or a subclass such as TRL's DPOConfig;
    `batch`: (examples per forward, steps accumulated), default the config's; `extra`: that subclass's own
    fields, or overrides)."""
    import torch
    from transformers import TrainingArguments

    from tuner.methods import cpu_autocast

    cuda = torch.cuda.is_available()
    by_steps = cfg.eval_steps is not None
    strategy = "steps" if by_steps else "epoch"
    kwargs: dict[str, Any] = {}
    if is_distributed() and not cuda:
        kwargs["ddp_backend"] = "gloo"  # only under torchrun: plain python has no process group
    if is_distributed():
        kwargs["ddp_find_unused_parameters"] = False
    kwargs.update(extra)
    micro, accum = batch or (cfg.batch_size, cfg.grad_accum)
    return (cls or TrainingArguments)(
        output_dir=str(run_dir),
        per_device_train_batch_size=micro,
        per_device_eval_batch_size=micro,
        gradient_accumulation_steps=accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a fraction of the total steps
        lr_scheduler_type=cfg.scheduler,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        eval_strategy=strategy if has_val else "no",
        eval_steps=cfg.eval_steps,
        save_strategy=strategy,
        save_steps=cfg.eval_steps or 500,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=has_val,
        metric_for_best_model="eval_loss" if has_val else None,
        greater_is_better=False if has_val else None,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to="none",
        use_cpu=not cuda,
        bf16=dtype == torch.bfloat16
        or cpu_autocast(cfg.dtype, cfg.method),  # on CPU: autocast, fp32 master weights
        fp16=dtype == torch.float16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=0,
        disable_tqdm=True,  # QuietProgress below instead: a bar without printed log dicts
        log_level="warning",
        **{"remove_unused_columns": False, "label_names": ["labels"], **kwargs},
    )


def quiet_progress_callback() -> Any:
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    from ragtune.logs import progress_enabled

    class QuietProgress(TrainerCallback):
        """One tqdm bar over optimizer steps with the latest losses as its postfix; prints nothing else."""

        bar = None

        def on_train_begin(self, args, state, control, **kw):
            if state.is_world_process_zero and progress_enabled():
                self.bar = tqdm(
                    total=state.max_steps,
                    initial=state.global_step,
                    desc="training",
                    unit="step",
                    dynamic_ncols=True,
                    leave=False,
                )

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is not None and logs:
                shown = {
                    k: f"{v:.4g}"
                    for k, v in logs.items()
                    if k in ("loss", "eval_loss") and isinstance(v, float)
                }
                if shown:
                    self.bar.set_postfix(shown, refresh=False)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return QuietProgress()


def history(log_history: list[dict]) -> tuple[list[dict], list[dict]]:
    """(training-loss entries, validation entries) from the Trainer's log history."""
    train = [
        {"step": h["step"], "epoch": h.get("epoch"), "loss": h["loss"]} for h in log_history if "loss" in h
    ]
    val = [
        {"step": h["step"], "epoch": h.get("epoch"), "eval_loss": h["eval_loss"]}
        for h in log_history
        if "eval_loss" in h
    ]
    return train, val
