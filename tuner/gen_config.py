"""The generator run config: one dataclass per method family over the fields every method shares, every field
with a help string, validated at construction.

    GeneratorConfig            the shared fields: data, mode (closed-book or RAFT), optimisation, runtime
    ├── LoraGeneratorConfig    + lora_r, lora_alpha, lora_dropout, target_modules   (lora, dora, qlora)
    ├── PromptGeneratorConfig  + num_virtual_tokens                                 (prefix, prompt, ptuning)
    └── FullGeneratorConfig    nothing more                                         (full)

`ragtune tune generator` flags, YAML run configs (`configs/*.yaml`) and `train_generator(**kwargs)` fill one
dict that `GeneratorConfig.from_dict` turns into the method's config. Every problem is reported at once, in one
error: a bad value (naming the field and the fix), an unknown field, and a field set that does not apply, such
as `lora_r` under method prefix or `p_gold` without a RAFT task, which is refused instead of silently ignored.
Configs saved with a run (`ragtune.json`, `checkpoints/run_config.json`) load with `from_saved`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from ragtune.errors import RagtuneError
from ragtune.models import GENERATOR_HELP, is_default, model_dir_problem
from ragtune.retrieval import KINDS

METHODS = ("lora", "dora", "qlora", "prefix", "prompt", "ptuning", "full")
PEFT_LORA = ("lora", "dora", "qlora")
PEFT_PROMPT = ("prefix", "prompt", "ptuning")
MODES = ("closed-book", "raft")
OBJECTIVES = ("sft", "dpo")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
DTYPES = ("auto", "float32", "bfloat16", "float16", "bf16-autocast")
RAFT_FIELDS = ("k", "p_gold", "quote")  # shape RAFT examples only
TASK_FIELDS = {"data", "mode", "weight", "index", "system_prompt", "user_template"}

# Learning rates that work for each family when none is given (PEFT literature defaults). P-tuning's
# prompt encoder is an MLP: at 1e-3 and above Adam's first steps blow SmolLM2-135M's loss from 4 to 9-15.
DEFAULT_LR = {
    "lora": 2e-4,
    "dora": 2e-4,
    "qlora": 2e-4,
    "prefix": 3e-2,
    "prompt": 3e-2,
    "ptuning": 3e-4,
    "full": 2e-5,
}

# DPO moves the policy by log-probability ratios against the frozen base: LoRA at the SFT rate overshoots
# on a few hundred pairs (the chosen answers' log-probabilities fall with the rejected ones).
DPO_LR = {"lora": 5e-5, "dora": 5e-5, "qlora": 5e-5, "full": 5e-7}

Check = Callable[[Any], str | None]  # a field's value -> why it is bad, or None


def _one_of(choices: tuple[str, ...]) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _positive_int(v: Any) -> str | None:
    return None if isinstance(v, int) and v > 0 else "should be a positive integer"


def _between(lo: float, hi: float) -> Check:
    return lambda v: (
        None if isinstance(v, (int, float)) and lo <= v <= hi else f"must be between {lo} and {hi}"
    )


def _unset_or(check: Check, why: str) -> Check:
    return lambda v: None if v is None or check(v) else why


def _is_positive_int(v: Any) -> bool:
    return isinstance(v, int) and v > 0


def _is_positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and v > 0


def _f(default: Any, help: str, check: Check | None = None) -> Any:
    meta = {"help": help, "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class GeneratorConfig:
    """The fields every method shares. Build a run's config with `GeneratorConfig.from_dict`, which picks the
    method's class, or construct that class directly; this base class alone is no method's config."""

    FAMILY: ClassVar[tuple[str, ...]] = ()  # the methods a class configures

    base: str | None = _f(None, f"Base model: {GENERATOR_HELP}; a merged ragtune model works too.")
    data: Any = _f(None, "QA or chat .jsonl (or a list of them, mixed with equal weight).")  # noqa: RUF009 (_f: a field)
    out_dir: str | None = _f(
        None, "Output folder: the adapter (or full model), checkpoints/ and ragtune.json."
    )
    method: str = _f("lora", "lora, dora, qlora, prefix, prompt, ptuning or full.")
    mode: str = _f(
        "closed-book",
        "closed-book (question -> answer) or raft (question + k retrieved passages).",
        _one_of(MODES),
    )
    index: str | None = _f(None, "ragtune index folder; required for mode raft.")
    retrieval_mode: str | None = _f(
        None,
        "raft: how passages are retrieved: dense, bm25 or hybrid (default: hybrid, or dense on an index "
        "without a lexical part).",
        lambda v: None if v is None or v in KINDS else f"must be one of {', '.join(KINDS)}",
    )
    tasks: list = _f(  # noqa: RUF009
        [],
        "Multi-task mix: a list of {data, mode, weight, index?, system_prompt?}; overrides data.",
    )
    adapter: str | None = _f(None, "Continue training this existing adapter (sequential fine-tuning).")
    objective: str = _f(
        "sft",
        "sft (supervised: the answer's tokens) or dpo (direct preference optimisation on prompt/chosen/"
        "rejected pairs, e.g. `ragtune feedback export`'s preferences.jsonl; TRL's DPOTrainer).",
        _one_of(OBJECTIVES),
    )
    beta: float = _f(
        0.1,
        "dpo: how far the model may move from the base (higher: closer to the base).",
        lambda v: None if isinstance(v, (int, float)) and v > 0 else "must be a positive number",
    )
    # RAFT
    k: int = _f(4, "Passages per RAFT example (gold + distractors).", _positive_int)
    p_gold: float = _f(
        0.8,
        "Fraction of RAFT examples that keep the gold passage; the rest get only distractors.",
        _between(0.0, 1.0),
    )
    quote: bool = _f(False, "RAFT answers also quote the supporting sentence of the gold passage.")
    # templates
    system_prompt: str | None = _f(None, "System prompt (default: ragtune.prompt's for the mode).")
    user_template: str | None = _f(
        None,
        "Template applied to the question, e.g. 'Reply briefly. {question}'.",
        _unset_or(lambda v: isinstance(v, str) and "{question}" in v, "must contain {question}"),
    )
    # split
    val_fraction: float = _f(
        0.1, "Fraction of source documents held out for validation (0 disables it).", _between(0.0, 0.9)
    )
    # optimisation
    learning_rate: float | None = _f(
        None,
        "Peak learning rate (default by method: LoRA 2e-4, prefix/prompt 3e-2, p-tuning 3e-4, full 2e-5).",
    )
    batch_size: int = _f(8, "Examples per device per step.", _positive_int)
    grad_accum: int = _f(1, "Gradient accumulation steps.", _positive_int)
    max_batch_tokens: int | None = _f(
        None,
        "Split each step's batch into micro-batches of at most this many tokens (counted at the longest "
        "example), accumulating their gradients: the same examples per step, less memory (bench/train_memory.py).",
        _unset_or(_is_positive_int, "should be a positive integer (or unset: no split)"),
    )
    epochs: float = _f(3.0, "Training epochs (ignored when max_steps > 0).")
    max_steps: int = _f(
        -1,
        "Stop after this many optimizer steps (-1: use epochs).",
        lambda v: (
            None
            if v == -1 or _is_positive_int(v)
            else "must be -1 (use epochs) or a positive number of steps"
        ),
    )
    weight_decay: float = _f(
        0.0,
        "AdamW weight decay.",
        lambda v: None if isinstance(v, (int, float)) and v >= 0 else "must be >= 0",
    )
    warmup_ratio: float = _f(0.0, "Fraction of steps spent warming up the learning rate.", _between(0.0, 1.0))
    scheduler: str = _f(
        "linear",
        "Learning-rate schedule: linear, cosine, constant, constant_with_warmup, ...",
        _one_of(SCHEDULERS),
    )
    max_length: int | None = _f(
        None,
        "Longest tokenized example (default: min(model limit, 1024)).",
        _unset_or(lambda v: isinstance(v, int) and v >= 16, "must be an integer >= 16"),
    )
    seed: int = _f(0, "Seed for data order, split, RAFT sampling and initialisation.")
    # evaluation and checkpoints
    eval_steps: int | None = _f(
        None,
        "Validate (and checkpoint) every N steps; default once per epoch.",
        _unset_or(_is_positive, "must be a positive number of steps (or unset for once per epoch)"),
    )
    early_stopping_patience: int | None = _f(
        None,
        "Stop after N validations without improvement.",
        _unset_or(_is_positive, "must be a positive number of validations"),
    )
    save_total_limit: int = _f(2, "Checkpoints kept (the best one is always kept).", _positive_int)
    resume: bool = _f(False, "Continue from the last complete checkpoint in out_dir/checkpoints.")
    # runtime
    dtype: str = _f(
        "auto",
        "auto (bf16 on a CUDA GPU that has it; LoRA and DoRA on a CPU with native bf16, AVX512-BF16 or AMX: "
        "bf16-autocast; else float32), float32, bfloat16, float16, or bf16-autocast (float32 weights, "
        "bf16 matmuls).",
        _one_of(DTYPES),
    )
    gradient_checkpointing: bool = _f(False, "Trade compute for activation memory.")
    logging_steps: int = _f(5, "Log the training loss every N steps.", _positive_int)
    cpu_threads: int | None = _f(
        None,
        "torch CPU threads while training (1 is fastest for tiny models on busy cores).",
        _unset_or(_is_positive_int, "should be a positive integer (or unset for torch's default)"),
    )

    def __post_init__(self) -> None:
        _raise_all(type(self).problems(self.to_dict()), type(self).__name__)

    # --- building ------------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], where: str = "config", check_inputs: bool = False
    ) -> GeneratorConfig:
        """The config of `d["method"]`, validated; every unknown field, field that does not apply, bad value and
        (with `check_inputs`) missing input is reported in one RagtuneError."""
        d = dict(d)
        target = (
            cls if cls is not GeneratorConfig else _CLASS_OF.get(d.get("method", "lora"), GeneratorConfig)
        )
        problems = _field_problems(target, d, d.get("method", _defaults(target)["method"]), where)
        values = {**_defaults(target), **{k: v for k, v in d.items() if k in _names(target)}}
        problems += target.problems(values)
        if check_inputs:
            problems += input_problems(values)
        _raise_all(problems, where)
        return target(**{k: v for k, v in d.items() if k in _names(target)})

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> GeneratorConfig:
        from ragtune.settings import read_yaml_mapping

        data = read_yaml_mapping(path, "config")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_saved(cls, d: Mapping[str, Any]) -> GeneratorConfig:
        """A config saved with a run (`ragtune.json`'s `config`, `checkpoints/run_config.json`). Older runs saved
        every field of every method; the fields that do not apply to the run's method had no effect and are
        dropped."""
        target = _CLASS_OF.get(d.get("method", "lora"), cls)
        return target(**{k: v for k, v in d.items() if k in _names(target)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- checks --------------------------------------------------------------------------------
    @classmethod
    def problems(cls, values: Mapping[str, Any]) -> list[str]:
        """What is wrong with these field values for this class (no file is looked at); empty when fine."""
        out = []
        method = values.get("method")
        if method not in METHODS:
            out.append(f"`method` must be one of {', '.join(METHODS)} (got {method!r})")
        elif method not in cls.FAMILY:
            out.append(
                f"`method` {method} is configured by {_CLASS_OF[method].__name__}, not {cls.__name__}; "
                "build configs with GeneratorConfig.from_dict"
            )
        for f in fields(cls):
            why = f.metadata.get("check") and f.metadata["check"](values.get(f.name, f.default))
            if why:
                out.append(f"`{f.name}` {why} (got {values.get(f.name)!r})")
        return out + _cross_problems(values)

    def check_inputs(self) -> GeneratorConfig:
        """Check that the run's inputs are given and exist (base model, data files, index, adapter)."""
        _raise_all(input_problems(self.to_dict()), "config")
        return self

    # --- derived -------------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return (DPO_LR if self.objective == "dpo" else DEFAULT_LR)[self.method]

    def task_list(self) -> list[dict[str, Any]]:
        """Tasks as dicts ({data, mode, weight, index, system_prompt}); `data` alone is one task per file."""
        return _task_list(self.tasks, self.data)


@dataclass
class LoraGeneratorConfig(GeneratorConfig):
    """LoRA and its variants: DoRA (magnitude + direction) and QLoRA (LoRA on a 4-bit base)."""

    FAMILY: ClassVar[tuple[str, ...]] = PEFT_LORA

    lora_r: int = _f(8, "LoRA rank.", _positive_int)
    lora_alpha: int = _f(16, "LoRA alpha (scale = alpha / r).", _positive_int)
    lora_dropout: float = _f(0.05, "LoRA dropout.", _between(0.0, 0.9))
    target_modules: list | None = _f(  # noqa: RUF009 (_f makes a dataclasses.field)
        None,
        "LoRA target modules (default chosen by architecture).",
        _unset_or(
            lambda v: isinstance(v, (list, tuple)) and all(isinstance(m, str) for m in v),
            "must be a list of module names, e.g. [q_proj, v_proj]",
        ),
    )


@dataclass
class PromptGeneratorConfig(GeneratorConfig):
    """Prompt learning: prefix tuning, prompt tuning and p-tuning (virtual tokens, the base frozen)."""

    FAMILY: ClassVar[tuple[str, ...]] = PEFT_PROMPT

    method: str = _f("prefix", "prefix, prompt or ptuning.")
    num_virtual_tokens: int = _f(16, "Virtual tokens for prefix, prompt and p-tuning.", _positive_int)


@dataclass
class FullGeneratorConfig(GeneratorConfig):
    """Full fine-tuning: every weight trains; the output is a whole model folder."""

    FAMILY: ClassVar[tuple[str, ...]] = ("full",)

    method: str = _f("full", "full.")


CONFIG_CLASSES = (LoraGeneratorConfig, PromptGeneratorConfig, FullGeneratorConfig)
_CLASS_OF: dict[str, type[GeneratorConfig]] = {m: c for c in CONFIG_CLASSES for m in c.FAMILY}


def _names(cls: type[GeneratorConfig]) -> set[str]:
    return {f.name for f in fields(cls)}


def _defaults(cls: type[GeneratorConfig]) -> dict[str, Any]:
    return {
        f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        for f in fields(cls)
    }


def _raise_all(problems: list[str], where: str) -> None:
    if len(problems) == 1:
        raise RagtuneError(problems[0])
    if problems:
        raise RagtuneError(
            f"{len(problems)} problems in {where}:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _field_problems(
    target: type[GeneratorConfig], d: Mapping[str, Any], method: str, where: str
) -> list[str]:
    """Unknown fields, and fields given that do not apply to the method or the mode."""
    known = set().union(*(_names(c) for c in CONFIG_CLASSES))
    unknown = sorted(set(d) - known)
    out = [f"{where}: unknown field(s) {unknown}; known fields: {sorted(known)}"] if unknown else []
    if method in METHODS:
        for name in sorted(set(d) & known - _names(target)):
            users = [m for c in CONFIG_CLASSES if name in _names(c) for m in c.FAMILY]
            out.append(
                f"`{name}` does not apply to method {method} (only {', '.join(users)} use it); remove it "
                f"(or the --{name.replace('_', '-')} flag), or choose one of those methods"
            )
    tasks, mode = d.get("tasks") or [], d.get("mode", "closed-book")
    if _task_problems(tasks):
        return out
    raft = any(t.get("mode", mode) == "raft" for t in tasks) if tasks else mode == "raft"
    if not raft:
        for name in (n for n in RAFT_FIELDS if n in d):
            out.append(
                f"`{name}` shapes RAFT examples only and no task here is RAFT; remove it (or the "
                f"--{name.replace('_', '-')} flag), or set mode raft"
            )
    return out


def _cross_problems(v: Mapping[str, Any]) -> list[str]:
    """Checks that involve more than one field."""
    out = []
    if v.get("max_steps") == -1 and not (isinstance(v.get("epochs"), (int, float)) and v["epochs"] > 0):
        out.append(f"`epochs` must be positive when max_steps is -1 (got {v.get('epochs')!r})")
    lr = v.get("learning_rate")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        out.append(f"`learning_rate` must be positive (got {lr!r})")
    if v.get("early_stopping_patience") and v.get("val_fraction") == 0:
        out.append("`early_stopping_patience` needs a validation split: set `val_fraction` above 0")
    if v.get("adapter") and v.get("method") == "full":
        out.append(
            f"`adapter` continues a PEFT adapter; with method full, pass the merged model as --base "
            f"(got {v['adapter']!r})"
        )
    if v.get("objective") == "dpo":
        out += _dpo_problems(v)
    tasks = v.get("tasks") or []
    if _task_problems(tasks):
        return out + _task_problems(tasks)
    for t in _task_list(tasks, v.get("data")):
        mode = t.get("mode", v.get("mode"))
        if "mode" in t and mode not in MODES:
            out.append(f"task {t['data']}: `mode` must be one of {MODES}, got {t.get('mode')!r}")
        if mode == "raft" and not (t.get("index") or v.get("index")):
            out.append("mode raft needs an index: pass --index DIR (build one with `ragtune ingest`)")
        w = t.get("weight", 1.0)
        if not isinstance(w, (int, float)) or w <= 0:
            out.append(f"task {t['data']}: `weight` must be a positive number, got {w!r}")
    return out


def _dpo_problems(v: Mapping[str, Any]) -> list[str]:
    """DPO trains on preference pairs whose prompts already hold their passages: one file, no RAFT."""
    out = []
    if v.get("method") not in (*PEFT_LORA, "full"):
        out.append(f"objective dpo trains LoRA, DoRA, QLoRA or full weights, not method {v.get('method')!r}")
    if v.get("mode") == "raft" or v.get("tasks"):
        out.append(
            "objective dpo reads prompt/chosen/rejected pairs whose prompts already hold the passages; "
            "drop --mode raft and `tasks` (one --data preferences.jsonl)"
        )
    return out


def _task_problems(tasks: Any) -> list[str]:
    if not isinstance(tasks, list):
        return [f"`tasks` must be a list of {{data, mode, weight, ...}} mappings (got {tasks!r})"]
    out = []
    for i, t in enumerate(tasks):
        if not isinstance(t, dict) or "data" not in t:
            out.append(f"tasks[{i}] must be a mapping with at least `data`, got {t!r}")
        elif set(t) - TASK_FIELDS:
            out.append(f"tasks[{i}]: unknown field(s) {sorted(set(t) - TASK_FIELDS)}")
    return out


def _task_list(tasks: list, data: Any) -> list[dict[str, Any]]:
    if tasks:
        return [dict(t) for t in tasks]
    if data is None:
        return []
    files = data if isinstance(data, (list, tuple)) else [data]
    return [{"data": str(f)} for f in files]


def input_problems(v: Mapping[str, Any]) -> list[str]:
    """What a run is missing: the base model, the output folder, the data files, the index, the adapter."""
    out = []
    if not v.get("base"):
        out.append(
            "`base` is required: pass --base MODEL_DIR (a local Hugging Face model folder) or "
            "--base default (the embedded SmolLM2-135M-Instruct)"
        )
    elif not is_default(v["base"]):
        out.append(model_dir_problem(v["base"], "`base`", default_ok=True))
    if not v.get("out_dir"):
        out.append("`out_dir` is required: pass --out DIR")
    if not v.get("tasks") and not v.get("data"):
        out.append("`data` is required: pass --data QA.jsonl (or `tasks:` in the YAML config)")
    if not _task_problems(v.get("tasks") or []):
        for t in _task_list(v.get("tasks") or [], v.get("data")):
            if not Path(t["data"]).is_file():
                out.append(f"data file {t['data']} does not exist; pass an existing .jsonl to --data")
    if v.get("index") and not Path(v["index"]).is_dir():
        out.append(
            f"`index` must be an existing ragtune index folder; build one with `ragtune ingest` "
            f"(got {v['index']!r})"
        )
    if v.get("adapter") and not (Path(v["adapter"]) / "adapter_config.json").is_file():
        out.append(
            f"`adapter` must be a folder holding adapter_config.json (a ragtune/PEFT adapter) "
            f"(got {v['adapter']!r})"
        )
    return [p for p in out if p]


def config_help() -> dict[str, str]:
    """Field name -> help string, over every method's fields (for CLI option help)."""
    return {
        f.name: f.metadata.get("help", "")
        for c in CONFIG_CLASSES
        for f in fields(c)
        if c is LoraGeneratorConfig or f.name != "method"
    }


def config_defaults() -> dict[str, Any]:
    """Field name -> default, over every method's fields (LoRA's method default)."""
    return {k: v for c in reversed(CONFIG_CLASSES) for k, v in _defaults(c).items()}
