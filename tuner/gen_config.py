"""The generator run config: one dataclass, every field with a help string, validated before heavy work.

`ragtune tune generator` flags, YAML run configs (`configs/*.yaml`) and `train_generator(**kwargs)`
all fill this one dataclass; `validate()` names the bad field and the fix.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.models import GENERATOR_HELP, check_model_dir

METHODS = ("lora", "dora", "qlora", "prefix", "prompt", "ptuning", "full")
PEFT_LORA = ("lora", "dora", "qlora")
PEFT_PROMPT = ("prefix", "prompt", "ptuning")
MODES = ("closed-book", "raft")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
DTYPES = ("auto", "float32", "bfloat16", "float16")

# Learning rates that work for each family when none is given (PEFT literature defaults). P-tuning's
# prompt encoder is an MLP: at 1e-3 and above Adam's first steps blow SmolLM2-135M's loss from 4 to 9-15.
DEFAULT_LR = {"lora": 2e-4, "dora": 2e-4, "qlora": 2e-4, "prefix": 3e-2, "prompt": 3e-2, "ptuning": 3e-4,
              "full": 2e-5}


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class GeneratorConfig:
    base: str = _f(None, f"Base model: {GENERATOR_HELP}; a merged ragtune model works too.")
    data: Any = _f(None, "QA or chat .jsonl (or a list of them, mixed with equal weight).")
    out_dir: str = _f(None, "Output folder: the adapter (or full model), checkpoints/ and ragtune.json.")
    method: str = _f("lora", "lora, dora, qlora, prefix, prompt, ptuning or full.")
    mode: str = _f("closed-book", "closed-book (question -> answer) or raft (question + k retrieved passages).")
    index: str | None = _f(None, "ragtune index folder; required for mode raft.")
    tasks: list = _f([], "Multi-task mix: a list of {data, mode, weight, index?, system_prompt?}; overrides data.")
    adapter: str | None = _f(None, "Continue training this existing adapter (sequential fine-tuning).")
    # RAFT
    k: int = _f(4, "Passages per RAFT example (gold + distractors).")
    p_gold: float = _f(0.8, "Fraction of RAFT examples that keep the gold passage; the rest get only distractors.")
    quote: bool = _f(False, "RAFT answers also quote the supporting sentence of the gold passage.")
    # templates
    system_prompt: str | None = _f(None, "System prompt (default: ragtune.prompt's for the mode).")
    user_template: str | None = _f(None, "Template applied to the question, e.g. 'Reply briefly. {question}'.")
    # split
    val_fraction: float = _f(0.1, "Fraction of source documents held out for validation (0 disables it).")
    # optimisation
    learning_rate: float | None = _f(None, "Peak learning rate (default by method: LoRA 2e-4, prefix/prompt 3e-2, "
                                           "p-tuning 3e-4, full 2e-5).")
    batch_size: int = _f(8, "Examples per device per step.")
    grad_accum: int = _f(1, "Gradient accumulation steps.")
    epochs: float = _f(3.0, "Training epochs (ignored when max_steps > 0).")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1: use epochs).")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    warmup_ratio: float = _f(0.0, "Fraction of steps spent warming up the learning rate.")
    scheduler: str = _f("linear", "Learning-rate schedule: linear, cosine, constant, constant_with_warmup, ...")
    max_length: int | None = _f(None, "Longest tokenized example (default: min(model limit, 1024)).")
    seed: int = _f(0, "Seed for data order, split, RAFT sampling and initialisation.")
    # PEFT
    lora_r: int = _f(8, "LoRA rank.")
    lora_alpha: int = _f(16, "LoRA alpha (scale = alpha / r).")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    target_modules: list | None = _f(None, "LoRA target modules (default chosen by architecture).")
    num_virtual_tokens: int = _f(16, "Virtual tokens for prefix, prompt and p-tuning.")
    # evaluation and checkpoints
    eval_steps: int | None = _f(None, "Validate (and checkpoint) every N steps; default once per epoch.")
    early_stopping_patience: int | None = _f(None, "Stop after N validations without improvement.")
    save_total_limit: int = _f(2, "Checkpoints kept (the best one is always kept).")
    resume: bool = _f(False, "Continue from the last complete checkpoint in out_dir/checkpoints.")
    # runtime
    dtype: str = _f("auto", "auto (bf16 on a CUDA GPU that has it, else float32), float32, bfloat16, float16.")
    gradient_checkpointing: bool = _f(False, "Trade compute for activation memory.")
    logging_steps: int = _f(5, "Log the training loss every N steps.")
    cpu_threads: int | None = _f(None, "torch CPU threads while training (1 is fastest for tiny models on busy cores).")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RagtuneError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> GeneratorConfig:
        from ragtune.settings import read_yaml_mapping

        data = read_yaml_mapping(path, "config")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.method]

    def validate(self) -> GeneratorConfig:
        """Check every field that needs no model; raise RagtuneError naming the field and the fix."""
        def bad(name: str, why: str) -> RagtuneError:
            return RagtuneError(f"`{name}` {why} (got {getattr(self, name)!r})")

        if self.method not in METHODS:
            raise bad("method", f"must be one of {', '.join(METHODS)}")
        if self.mode not in MODES:
            raise bad("mode", f"must be one of {', '.join(MODES)}")
        if not self.base:
            raise RagtuneError("`base` is required: pass --base MODEL_DIR (a local Hugging Face model folder) or "
                               "--base default (the embedded SmolLM2-135M-Instruct)")
        check_model_dir(self.base, "`base`", default_ok=True)
        if not self.out_dir:
            raise RagtuneError("`out_dir` is required: pass --out DIR")
        if not self.tasks and not self.data:
            raise RagtuneError("`data` is required: pass --data QA.jsonl (or `tasks:` in the YAML config)")
        for t in self.task_list():
            if not Path(t["data"]).is_file():
                raise RagtuneError(f"data file {t['data']} does not exist; pass an existing .jsonl to --data")
            if t.get("mode", self.mode) not in MODES:
                raise RagtuneError(f"task {t['data']}: `mode` must be one of {MODES}, got {t.get('mode')!r}")
            if t.get("mode", self.mode) == "raft" and not (t.get("index") or self.index):
                raise RagtuneError("mode raft needs an index: pass --index DIR (build one with `ragtune ingest`)")
            w = t.get("weight", 1.0)
            if not isinstance(w, (int, float)) or w <= 0:
                raise RagtuneError(f"task {t['data']}: `weight` must be a positive number, got {w!r}")
        if self.index and not Path(self.index).is_dir():
            raise bad("index", "must be an existing ragtune index folder; build one with `ragtune ingest`")
        if self.adapter and not (Path(self.adapter) / "adapter_config.json").is_file():
            raise bad("adapter", "must be a folder holding adapter_config.json (a ragtune/PEFT adapter)")
        if self.adapter and self.method not in PEFT_LORA + PEFT_PROMPT:
            raise bad("adapter", "continues a PEFT adapter; with method full, pass the merged model as --base")
        positive = ("batch_size", "grad_accum", "lora_r", "lora_alpha", "num_virtual_tokens", "k",
                    "save_total_limit", "logging_steps")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise bad(name, "should be a positive integer")
        if self.max_steps == 0 or self.max_steps < -1:
            raise bad("max_steps", "must be -1 (use epochs) or a positive number of steps")
        if self.max_steps == -1 and not self.epochs > 0:
            raise bad("epochs", "must be positive when max_steps is -1")
        if self.lr <= 0:
            raise bad("learning_rate", "must be positive")
        for name, lo, hi in (("p_gold", 0.0, 1.0), ("val_fraction", 0.0, 0.9), ("lora_dropout", 0.0, 0.9),
                             ("warmup_ratio", 0.0, 1.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise bad(name, f"must be between {lo} and {hi}")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"must be one of {', '.join(SCHEDULERS)}")
        if self.dtype not in DTYPES:
            raise bad("dtype", f"must be one of {', '.join(DTYPES)}")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 16):
            raise bad("max_length", "must be an integer >= 16")
        if self.cpu_threads is not None and (not isinstance(self.cpu_threads, int) or self.cpu_threads <= 0):
            raise bad("cpu_threads", "should be a positive integer (or unset for torch's default)")
        if self.eval_steps is not None and self.eval_steps <= 0:
            raise bad("eval_steps", "must be a positive number of steps (or unset for once per epoch)")
        if self.early_stopping_patience is not None and self.early_stopping_patience <= 0:
            raise bad("early_stopping_patience", "must be a positive number of validations")
        if self.early_stopping_patience and self.val_fraction == 0:
            raise RagtuneError("`early_stopping_patience` needs a validation split: set `val_fraction` above 0")
        if self.target_modules is not None and (
            isinstance(self.target_modules, str) or not all(isinstance(m, str) for m in self.target_modules)
        ):
            raise bad("target_modules", "must be a list of module names, e.g. [q_proj, v_proj]")
        if self.user_template is not None and "{question}" not in self.user_template:
            raise bad("user_template", "must contain {question}")
        return self

    def task_list(self) -> list[dict[str, Any]]:
        """Tasks as dicts ({data, mode, weight, index, system_prompt}); `data` alone is one task per file."""
        if self.tasks:
            out = []
            for i, t in enumerate(self.tasks):
                if not isinstance(t, dict) or "data" not in t:
                    raise RagtuneError(f"tasks[{i}] must be a mapping with at least `data`, got {t!r}")
                extra = set(t) - {"data", "mode", "weight", "index", "system_prompt", "user_template"}
                if extra:
                    raise RagtuneError(f"tasks[{i}]: unknown field(s) {sorted(extra)}")
                out.append(dict(t))
            return out
        files = self.data if isinstance(self.data, (list, tuple)) else [self.data]
        return [{"data": str(f)} for f in files]


def config_help() -> dict[str, str]:
    """Field name -> help string (for CLI option help)."""
    return {f.name: f.metadata.get("help", "") for f in fields(GeneratorConfig)}


def config_defaults() -> dict[str, Any]:
    out = {}
    for f in fields(GeneratorConfig):
        out[f.name] = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    return out
