"""`train_generator`: fine-tune a causal LM on QA data (closed-book or RAFT) with PEFT or fully.

Order of work: validate the config, the data and the model's config (seconds, nothing heavy);
build and tokenize examples; then load weights and train with the HF Trainer. The output folder
holds the best adapter (or full model), the tokenizer, `ragtune.json` and `checkpoints/`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.artifacts import write_artifact
from ragtune.errors import RagtuneError
from ragtune.hashing import data_hash
from ragtune.models import is_default, resolve_generator
from ragtune.prompt import PROMPT_FORMAT
from tuner import methods, runtime
from tuner.builders import build_raft_examples, build_sft_examples, open_retriever
from tuner.formatting import PadCollator, check_chat_template, encode_all
from tuner.gen_config import PEFT_LORA, PEFT_PROMPT, GeneratorConfig
from tuner.gen_data import load_generator_data, mix_tasks, split_by_document

log = logging.getLogger(__name__)


@dataclass
class GeneratorTrainResult:
    out_dir: str  # the adapter folder (or full model folder for method full): pass it to export_model
    method: str
    mode: str
    base: str
    steps: int
    epochs: float
    train_seconds: float
    tokens_per_second: float
    trainable_params: int
    total_params: int
    n_train: int
    n_val: int
    data_hash: str
    eval_loss_before: float | None = None
    eval_losses: list[dict] = field(default_factory=list)  # [{step, epoch, eval_loss}] per validation
    best_eval_loss: float | None = None
    best_checkpoint: str | None = None
    stopped_early: bool = False
    train_losses: list[dict] = field(default_factory=list)  # [{step, epoch, loss}] every logging_steps
    resumed_from: str | None = None
    world_size: int = 1  # processes that trained (torchrun / accelerate)

    @property
    def trainable_pct(self) -> float:
        return 100.0 * self.trainable_params / max(1, self.total_params)

    @property
    def metrics(self) -> dict[str, Any]:
        first = self.train_losses[0]["loss"] if self.train_losses else None
        last = self.train_losses[-1]["loss"] if self.train_losses else None
        return {
            "train_loss_first": first,
            "train_loss_last": last,
            "eval_loss_before": self.eval_loss_before,
            "best_eval_loss": self.best_eval_loss,
            "eval_losses": self.eval_losses,
            "steps": self.steps,
            "epochs": self.epochs,
            "stopped_early": self.stopped_early,
            "train_seconds": self.train_seconds,
            "tokens_per_second": self.tokens_per_second,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "world_size": self.world_size,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trainable_pct": self.trainable_pct}

    def summary(self) -> str:
        m = self.metrics
        val = (
            f"validation loss {self.eval_loss_before:.4f} -> best {self.best_eval_loss:.4f}"
            if self.eval_loss_before is not None and self.best_eval_loss is not None
            else "no validation split"
        )
        return (
            f"{self.method} ({self.mode}) saved to {self.out_dir}\n"
            f"  {self.steps} steps, {self.epochs:.2f} epochs in {self.train_seconds:.1f} s "
            f"({self.tokens_per_second:.0f} tokens/s){' - stopped early' if self.stopped_early else ''}\n"
            f"  train loss {m['train_loss_first']} -> {m['train_loss_last']}; {val}\n"
            f"  {self.trainable_params:,} of {self.total_params:,} parameters trained ({self.trainable_pct:.3f}%); "
            f"{self.n_train} train / {self.n_val} validation examples\n"
            f"  merge into a plain model folder: ragtune export --adapter {self.out_dir} --out MERGED_DIR"
        )


def make_config(base: str | None, data: Any, out_dir: str, **kwargs: Any) -> GeneratorConfig:
    """The method's validated config; `config=` names a YAML run config that the other arguments override.

    An adapter to continue names the method (and, unless given, the base); `default` is the embedded model."""
    yaml_path = kwargs.pop("config", None)
    values = {
        k: v for k, v in {"base": base, "data": data, "out_dir": out_dir, **kwargs}.items() if v is not None
    }
    where = "train_generator"
    if yaml_path:
        from ragtune.settings import read_yaml_mapping

        values, where = {**read_yaml_mapping(yaml_path, "config"), **values}, str(yaml_path)
    adapter = values.get("adapter")
    if adapter and (Path(adapter) / "adapter_config.json").is_file():
        values["method"] = methods.adapter_method(adapter)
        if not values.get("base"):
            values["base"] = methods.adapter_base(adapter)
    if is_default(values.get("base")):  # the embedded generator, materialised into the cache once
        values["base"] = str(resolve_generator(values["base"], what="base"))
    for name in ("base", "out_dir", "index", "adapter"):
        if values.get(name):
            values[name] = str(Path(values[name]).resolve())
    return GeneratorConfig.from_dict(values, where=where, check_inputs=True)


def build_examples(cfg: GeneratorConfig) -> tuple[list, list, dict[str, Any]]:
    """(train, val, info): every task loaded, built, split by document (jointly), train side mixed."""
    tasks = cfg.task_list()
    loaded = [(t, load_generator_data(t["data"])) for t in tasks]  # all files validated before any retrieval
    built, retrievers, versions = [], {}, {}
    for i, (t, rows) in enumerate(loaded):
        mode = t.get("mode", cfg.mode)
        sp, ut = t.get("system_prompt", cfg.system_prompt), t.get("user_template", cfg.user_template)
        name = f"{i}:{Path(t['data']).name}:{mode}"
        if mode == "raft":
            index = t.get("index") or cfg.index
            if index not in retrievers:
                retrievers[index] = open_retriever(index, cfg.retrieval_mode)
                versions[index] = getattr(retrievers[index], "version", None)
            exs = build_raft_examples(
                rows,
                retrievers[index],
                k=cfg.k,
                p_gold=cfg.p_gold,
                seed=cfg.seed + i,
                quote=cfg.quote,
                system_prompt=sp,
                user_template=ut,
                task=name,
            )
        else:
            exs = build_sft_examples(rows, system_prompt=sp, user_template=ut, task=name)
        built.append((exs, float(t.get("weight", 1.0))))
    train, val = split_by_document([e for exs, _ in built for e in exs], cfg.val_fraction, cfg.seed)
    train_ids = {id(e) for e in train}
    mixed = mix_tasks([([e for e in exs if id(e) in train_ids], w) for exs, w in built], cfg.seed)
    files = [t["data"] for t in tasks]
    info = {
        "data_hash": data_hash(files),
        "data_files": files,
        "index_versions": versions,
        "tasks": [{**t, "n": len(exs)} for t, (exs, _) in zip(tasks, built)],
    }
    return mixed, val, info


def train_generator(
    base: str | None,
    data: Any,
    out_dir: str,
    *,
    method: str | None = None,
    mode: str | None = None,
    index: str | None = None,
    **hyperparameters: Any,
) -> GeneratorTrainResult:
    """Fine-tune `base` on `data` into `out_dir`; see tuner.gen_config for every hyperparameter.

    `method` and `mode` default to the YAML run config's (`config=`), else lora and closed-book.
    Returns a GeneratorTrainResult (out_dir, metrics, trainable params, train time ...).
    Raises RagtuneError on bad input before any weights are loaded.
    """
    cfg = make_config(base, data, out_dir, method=method, mode=mode, index=index, **hyperparameters)
    if cfg.method == "qlora":
        methods.check_qlora_runtime()
    facts = methods.model_facts(cfg.base)
    targets = None
    if cfg.method in PEFT_LORA and not cfg.adapter:
        targets = cfg.target_modules or methods.default_target_modules(facts)
        if isinstance(targets, list):
            methods.check_target_modules(targets, facts)
    max_length = methods.resolve_max_length(cfg.max_length, facts)
    out = Path(cfg.out_dir)
    run_dir = out / runtime.CHECKPOINTS
    existing = runtime.complete_checkpoints(run_dir)
    if existing and not cfg.resume:
        raise RagtuneError(
            f"{out} already holds checkpoints ({existing[-1].name}); pass --resume to continue "
            "that run or choose a new --out"
        )
    _check_same_run(cfg, run_dir, existing)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg.base)
    check_chat_template(tokenizer, cfg.base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.objective == "dpo":  # prompt/chosen/rejected pairs, tokenized by TRL with the same chat template
        from tuner.preference import build_pairs

        train_rows, val_rows, info = build_pairs(cfg, tokenizer)
    else:
        train_ex, val_ex, info = build_examples(cfg)
        train_rows = encode_all(tokenizer, train_ex, max_length, "training data")
        val_rows = encode_all(tokenizer, val_ex, max_length, "validation data") if val_ex else []
    log.info(
        "%d training and %d validation examples (split by source document)", len(train_rows), len(val_rows)
    )
    import torch

    threads = torch.get_num_threads()
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _fit(cfg, facts, targets, tokenizer, train_rows, val_rows, info, existing)
    finally:
        torch.set_num_threads(threads)


def _fit(
    cfg: GeneratorConfig,
    facts: methods.ModelFacts,
    targets: Any,
    tokenizer: Any,
    train_rows: list[dict],
    val_rows: list[dict],
    info: dict[str, Any],
    existing: list[Path],
) -> GeneratorTrainResult:
    """Set up the model and Trainer → the validation loss before training → train → save the best weights."""
    trainer, trainable, total = _setup_trainer(cfg, facts, targets, tokenizer, train_rows, val_rows)
    run_dir = Path(cfg.out_dir) / runtime.CHECKPOINTS
    resume_from = str(existing[-1]) if (cfg.resume and existing) else None
    if cfg.resume and not existing:
        log.info("--resume: no complete checkpoint in %s; starting from step 0", run_dir)
    eval_before = _eval_before(trainer, run_dir, bool(val_rows), resume_from)
    t0 = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - t0
    state = trainer.state
    world = int(os.environ.get("WORLD_SIZE", "1"))
    avg_len = info.get("avg_tokens") or sum(len(r["input_ids"]) for r in train_rows) / len(train_rows)
    start_step = int(resume_from.rsplit("-", 1)[1]) if resume_from else 0
    tokens = (state.global_step - start_step) * cfg.batch_size * cfg.grad_accum * world * avg_len
    train_hist, val_hist = runtime.history(state.log_history)
    result = GeneratorTrainResult(
        out_dir=str(Path(cfg.out_dir)),
        method=cfg.method,
        mode=_mode_name(cfg),
        base=cfg.base,
        steps=state.global_step,
        epochs=float(state.epoch or 0.0),
        train_seconds=round(seconds, 2),
        tokens_per_second=round(tokens / max(seconds, 1e-9), 1),
        trainable_params=trainable,
        total_params=total,
        n_train=len(train_rows),
        n_val=len(val_rows),
        data_hash=info["data_hash"],
        eval_loss_before=eval_before,
        eval_losses=val_hist,
        best_eval_loss=state.best_metric,
        best_checkpoint=state.best_model_checkpoint,
        stopped_early=state.global_step < state.max_steps,
        train_losses=train_hist,
        resumed_from=resume_from,
        world_size=world,
    )
    if not math.isfinite(output.training_loss):
        raise RagtuneError(f"training diverged (loss {output.training_loss}); lower --lr (was {cfg.lr})")
    _save(cfg, trainer, tokenizer, result, info)
    return result


def _setup_trainer(
    cfg: GeneratorConfig,
    facts: methods.ModelFacts,
    targets: Any,
    tokenizer: Any,
    train_rows: list[dict],
    val_rows: list[dict],
) -> tuple[Any, int, int]:
    """(the Trainer of the wrapped model, trainable parameters, all parameters)."""
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer

    from tuner.answer_loss import AnswerLogitsTrainer, supports_logits_to_keep

    dtype = methods.choose_dtype(cfg.dtype, cfg.method)
    torch.manual_seed(cfg.seed)
    model = methods.load_base_model(cfg.base, cfg.method, dtype)
    model = methods.wrap_model(model, cfg.method, cfg, facts, targets, cfg.adapter)
    if cfg.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    trainable, total = methods.count_params(model)
    has_val = bool(val_rows)
    callbacks = [runtime.quiet_progress_callback()]
    if cfg.early_stopping_patience and has_val:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    if cfg.objective == "dpo":
        from tuner.preference import dpo_trainer

        trainer = dpo_trainer(cfg, model, tokenizer, train_rows, val_rows, dtype, callbacks)
        trainer.remove_callback(PrinterCallback)
        return trainer, trainable, total
    longest = max(len(r["input_ids"]) for r in (*train_rows, *val_rows))
    batch = runtime.micro_batches(cfg.batch_size, cfg.grad_accum, longest, cfg.max_batch_tokens)
    if batch[0] != cfg.batch_size:
        log.info(
            "micro-batches of %d examples, %d accumulated per step (longest example %d tokens, "
            "max_batch_tokens %d)", batch[0], batch[1], longest, cfg.max_batch_tokens,
        )  # fmt: skip
    args = runtime.training_arguments(
        cfg, Path(cfg.out_dir) / runtime.CHECKPOINTS, dtype, has_val, batch=batch
    )
    trainer_cls = Trainer
    if cfg.method not in PEFT_PROMPT and supports_logits_to_keep(model):
        trainer_cls = AnswerLogitsTrainer  # the output layer only where a label is: same loss, less work
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=val_rows or None,
        data_collator=PadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # the progress bar shows the losses; library code prints nothing
    return trainer, trainable, total


def _eval_before(trainer: Any, run_dir: Path, has_val: bool, resume_from: str | None) -> float | None:
    """The validation loss before training (kept in the run folder, so a resumed run reports it too)."""
    eval_before = None
    if has_val and resume_from is None:
        eval_before = trainer.evaluate()["eval_loss"]
    elif resume_from:
        eval_before = _artifact_eval_before(run_dir)
    if runtime.is_main_process() and eval_before is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "eval_before.txt").write_text(repr(eval_before))
    return eval_before


def _save(
    cfg: GeneratorConfig, trainer: Any, tokenizer: Any, result: GeneratorTrainResult, info: dict[str, Any]
) -> None:
    """The best weights (when validating: load_best_model_at_end), the tokenizer and ragtune.json."""
    out = Path(cfg.out_dir)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(out)
        write_artifact(
            out,
            base_model=cfg.base,
            method=cfg.method,
            objective=cfg.objective,
            mode=result.mode,
            kind="adapter" if cfg.method != "full" else "model",
            data_hash=info["data_hash"],
            prompt_format=PROMPT_FORMAT,
            data_files=info["data_files"],
            index_versions=info["index_versions"],
            tasks=info["tasks"],
            system_prompt=cfg.system_prompt,
            user_template=cfg.user_template,
            max_length=cfg.max_length,
            train_dtype=methods.resolve_dtype(cfg.dtype, cfg.method),  # what `auto` became on this machine
            config=cfg.to_dict(),
            metrics=result.metrics,
            parent_adapter=cfg.adapter,
        )


def _check_same_run(cfg: GeneratorConfig, run_dir: Path, existing: list[Path]) -> None:
    """A resumed run must be the run that was interrupted; record the config for the next resume."""
    import json

    path = run_dir / "run_config.json"
    now = {k: v for k, v in cfg.to_dict().items() if k != "resume"}
    if existing and path.is_file():
        before = json.loads(path.read_text())
        try:  # runs saved before the per-method configs hold every method's fields
            before = {k: v for k, v in GeneratorConfig.from_saved(before).to_dict().items() if k != "resume"}
        except (RagtuneError, TypeError):
            pass  # compared as saved
        changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
        if changed:
            raise RagtuneError(
                f"--resume with different settings than the interrupted run: {changed}; "
                f"resume with the same settings or start a new --out"
            )
    if runtime.is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(now, indent=2, sort_keys=True, default=str))


def _mode_name(cfg: GeneratorConfig) -> str:
    modes = sorted({t.get("mode", cfg.mode) for t in cfg.task_list()})
    return modes[0] if len(modes) == 1 else "mix:" + "+".join(modes)


def _artifact_eval_before(run_dir: Path) -> float | None:
    p = run_dir / "eval_before.txt"
    return float(p.read_text()) if p.is_file() else None
