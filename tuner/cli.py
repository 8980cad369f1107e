"""`ragtune tune generator|retriever`, `ragtune export`, `ragtune check-prompt`.

Flags mirror GeneratorConfig fields one to one (help strings come from the dataclass); a flag left
unset does not override the YAML run config given with --config.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ragtune.gguf_files import GGUF_TYPES
from ragtune.logs import quiet_libraries
from tuner.gen_config import config_help
from tuner.retriever_cli import retriever

_HELP = config_help()

# (flag, GeneratorConfig field, click type); boolean flags have type None.
_OPTIONS = [
    ("--base", "base", str),
    ("--method", "method", str),
    ("--mode", "mode", str),
    ("--index", "index", str),
    ("--retrieval", "retrieval_mode", click.Choice(["dense", "bm25", "hybrid"])),
    ("--out", "out_dir", str),
    ("--adapter", "adapter", str),
    ("--objective", "objective", click.Choice(["sft", "dpo"])),
    ("--beta", "beta", float),
    ("--k", "k", int),
    ("--p-gold", "p_gold", float),
    ("--system-prompt", "system_prompt", str),
    ("--user-template", "user_template", str),
    ("--val-fraction", "val_fraction", float),
    ("--lr --learning-rate", "learning_rate", float),
    ("--batch-size", "batch_size", int),
    ("--grad-accum", "grad_accum", int),
    ("--max-batch-tokens", "max_batch_tokens", int),
    ("--epochs", "epochs", float),
    ("--max-steps", "max_steps", int),
    ("--weight-decay", "weight_decay", float),
    ("--warmup-ratio", "warmup_ratio", float),
    ("--scheduler", "scheduler", str),
    ("--max-length", "max_length", int),
    ("--seed", "seed", int),
    ("--lora-r", "lora_r", int),
    ("--lora-alpha", "lora_alpha", int),
    ("--lora-dropout", "lora_dropout", float),
    ("--num-virtual-tokens", "num_virtual_tokens", int),
    ("--eval-steps", "eval_steps", int),
    ("--early-stopping-patience", "early_stopping_patience", int),
    ("--save-total-limit", "save_total_limit", int),
    ("--dtype", "dtype", str),
    ("--logging-steps", "logging_steps", int),
    ("--cpu-threads", "cpu_threads", int),
    ("--quote/--no-quote", "quote", None),
    ("--resume/--no-resume", "resume", None),
    ("--gradient-checkpointing/--no-gradient-checkpointing", "gradient_checkpointing", None),
]


def _config_options(f):
    for flag, name, typ in reversed(_OPTIONS):
        names = flag.split()
        if typ is None:
            f = click.option(*names, name, default=None, help=_HELP[name])(f)
        else:
            f = click.option(*names, name, type=typ, default=None, help=_HELP[name])(f)
    return f


@click.group("tune")
def tune() -> None:
    """Fine-tune the generator or the retriever."""


@tune.command("generator")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML run config (fields as below); flags override it.",
)
@click.option(
    "--data", "data", multiple=True, help="QA or chat .jsonl; repeat to mix files with equal weight."
)
@click.option("--target-modules", "target_modules", default=None, help="Comma-separated LoRA target modules.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_config_options
def generator(config, data, target_modules, as_json, **flags) -> None:
    """Fine-tune the generator: lora, dora, qlora, prefix, prompt, ptuning or full; closed-book or raft."""
    from tuner.gen_train import train_generator

    quiet_libraries()
    if target_modules:
        flags["target_modules"] = [m.strip() for m in target_modules.split(",") if m.strip()]
    data_arg = list(data) if len(data) > 1 else (data[0] if data else None)
    base = flags.pop("base")
    out_dir = flags.pop("out_dir")
    result = train_generator(
        base, data_arg, out_dir, config=config, **{k: v for k, v in flags.items() if v is not None}
    )
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())


tune.add_command(retriever)


@click.command("export")
@click.option(
    "--adapter",
    "adapter_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Output of `ragtune tune generator` (adapter or full model).",
)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help="Merged model folder.")
@click.option(
    "--dtype", default=None, help="Save as float32, bfloat16 or float16 (default: the base's dtype)."
)
@click.option(
    "--gguf",
    "gguf_type",
    type=click.Choice(GGUF_TYPES),
    default=None,
    help="Also write OUT/model.gguf for llama.cpp (with --model: FOLDER/model.gguf of a merged folder); "
    "the k-quants need llama-cpp-python.",
)
@click.option(
    "--model",
    "model_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="With --gguf: a merged model folder to write model.gguf into (no merge).",
)
@click.option(
    "--lora-gguf",
    default=None,
    type=click.Path(dir_okay=False),
    help="With --adapter: write the LoRA adapter as a GGUF LoRA file here (no merge) for `serve --backend "
    "llama.cpp --lora NAME=FILE`.",
)
def export(
    adapter_dir: str | None,
    out_dir: str | None,
    dtype: str | None,
    gguf_type: str | None,
    model_dir: str | None,
    lora_gguf: str | None,
) -> None:
    """Merge an adapter into a plain Hugging Face model folder (+ ragtune.json) that any server loads;
    optionally its GGUF (llama.cpp), or the adapter alone as a GGUF LoRA."""
    quiet_libraries()
    if model_dir is not None or lora_gguf is not None:
        return _export_gguf_only(adapter_dir, model_dir, gguf_type, lora_gguf)
    if adapter_dir is None or out_dir is None:
        raise click.UsageError("pass --adapter and --out (or --model FOLDER --gguf TYPE, or --lora-gguf)")
    from tuner.export import export_model

    path = export_model(adapter_dir, out_dir, dtype=dtype)
    from ragtune.artifacts import read_artifact

    peak = read_artifact(path).get("export", {})
    click.echo(
        f"merged model written to {path} (merge peak memory {peak.get('peak_rss_mb', '?')} MB over "
        f"{peak.get('model_mb', '?')} MB of weights)"
    )
    if gguf_type is not None:
        _write_model_gguf(path, gguf_type)


def _write_model_gguf(folder: str | Path, gguf_type: str) -> None:
    from ragtune.gguf_files import GGUF_IN_FOLDER, write_gguf

    out = write_gguf(folder, Path(folder) / GGUF_IN_FOLDER, gguf_type)
    click.echo(f"GGUF ({gguf_type}) written to {out} ({out.stat().st_size / 2**20:.0f} MB)")


def _export_gguf_only(
    adapter_dir: str | None, model_dir: str | None, gguf_type: str | None, lora_gguf: str | None
) -> None:
    if model_dir is not None:
        if gguf_type is None or adapter_dir is not None or lora_gguf is not None:
            raise click.UsageError("--model takes --gguf TYPE only (it converts a merged folder, no merge)")
        return _write_model_gguf(model_dir, gguf_type)
    if adapter_dir is None:
        raise click.UsageError("--lora-gguf FILE needs --adapter (the LoRA folder to convert)")
    from ragtune.gguf_files import write_lora_gguf
    from ragtune.models import resolve_generator
    from tuner import methods

    base = resolve_generator(methods.adapter_base(Path(adapter_dir)))
    out = write_lora_gguf(adapter_dir, base, lora_gguf)
    click.echo(f"GGUF LoRA written to {out} (serve it: --backend llama.cpp --model {base} --lora NAME={out})")


@click.command("check-prompt")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--question", default="Who founded Brightwater?", show_default=True)
def check_prompt(model_dir: str, question: str) -> None:
    """Render one conversation through the training and the serving formatter and compare the tokens.

    MODEL_DIR: a model or adapter folder, or `default` (the embedded SmolLM2-135M-Instruct)."""
    from ragtune.errors import RagtuneError
    from tuner.prompt_check import prompt_parity

    report = prompt_parity(model_dir, question=question)
    click.echo(report.text())
    if not report.ok:
        raise RagtuneError(f"prompt parity failed for {model_dir}: {report.problem}")
