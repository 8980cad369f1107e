"""`ragtune tune generator|retriever`, `ragtune export`, `ragtune check-prompt`.

Flags mirror GeneratorConfig fields one to one (help strings come from the dataclass); a flag left
unset does not override the YAML run config given with --config.
"""

from __future__ import annotations

import json

import click

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
    ("--k", "k", int),
    ("--p-gold", "p_gold", float),
    ("--system-prompt", "system_prompt", str),
    ("--user-template", "user_template", str),
    ("--val-fraction", "val_fraction", float),
    ("--lr --learning-rate", "learning_rate", float),
    ("--batch-size", "batch_size", int),
    ("--grad-accum", "grad_accum", int),
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
    required=True,
    type=click.Path(file_okay=False),
    help="Output of `ragtune tune generator` (adapter or full model).",
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Merged model folder."
)
@click.option(
    "--dtype", default=None, help="Save as float32, bfloat16 or float16 (default: the base's dtype)."
)
def export(adapter_dir: str, out_dir: str, dtype: str | None) -> None:
    """Merge an adapter into a plain Hugging Face model folder (+ ragtune.json) that any server loads."""
    quiet_libraries()
    from tuner.export import export_model

    path = export_model(adapter_dir, out_dir, dtype=dtype)
    from ragtune.artifacts import read_artifact

    peak = read_artifact(path).get("export", {})
    click.echo(
        f"merged model written to {path} (merge peak memory {peak.get('peak_rss_mb', '?')} MB over "
        f"{peak.get('model_mb', '?')} MB of weights)"
    )


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
