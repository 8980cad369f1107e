"""`ragtune run DOCS --out RUN`: the whole lifecycle on your documents; `ragtune serve --from RUN` serves the winner."""

from __future__ import annotations

import click

from lifecycle.config import DEFAULT_SYSTEMS, config_help
from ragtune.retrieval import DEFAULT_KIND, KINDS

_HELP = config_help()


@click.command("run")
@click.argument("docs", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help=_HELP["out"])
@click.option("--base", default="default", show_default=True, help=_HELP["base"])
@click.option("--synth-generator", default="default", show_default=True, help=_HELP["synth_generator"])
@click.option(
    "--synth-api-key",
    default=None,
    envvar="RAGTUNE_SYNTH_API_KEY",
    help=_HELP["synth_api_key"] + " [env: RAGTUNE_SYNTH_API_KEY]",
)
@click.option("--systems", default=DEFAULT_SYSTEMS, show_default=True, help=_HELP["systems"])
@click.option("--qa", default=None, type=click.Path(), help=_HELP["qa"])
@click.option("--budget-minutes", default=30.0, show_default=True, type=float, help=_HELP["budget_minutes"])
@click.option(
    "--tune-retriever/--no-tune-retriever", default=True, show_default=True, help=_HELP["tune_retriever"]
)
@click.option("--read-back/--no-read-back", default=True, show_default=True, help=_HELP["read_back"])
@click.option("--top-k", default=3, show_default=True, type=int, help=_HELP["top_k"])
@click.option(
    "--retrieval",
    "retrieval_mode",
    type=click.Choice(KINDS),
    default=DEFAULT_KIND,
    show_default=True,
    help=_HELP["retrieval_mode"],
)
@click.option("--fewshot", default=3, show_default=True, type=int, help=_HELP["fewshot"])
@click.option("--max-tokens", default=32, show_default=True, type=int, help=_HELP["max_tokens"])
@click.option("--lora-r", default=16, show_default=True, type=int, help=_HELP["lora_r"])
@click.option("--learning-rate", default=1e-3, show_default=True, type=float, help=_HELP["learning_rate"])
@click.option(
    "--metric",
    default="contains",
    show_default=True,
    type=click.Choice(["contains", "f1", "em"]),
    help=_HELP["metric"],
)
@click.option("--seed", default=0, show_default=True, type=int, help=_HELP["seed"])
@click.option("--feedback-db", default=None, type=click.Path(dir_okay=False), help=_HELP["feedback_db"])
@click.option("--force", is_flag=True, help=_HELP["force"])
@click.option("--progress/--no-progress", "show_progress", default=True, help="Bars with ETA on stderr.")
def run(show_progress: bool, **options) -> None:
    """Run ragtune's lifecycle on the documents in DOCS: ingest (refresh) the index, write and check
    question-answer pairs from its chunks (split by document), try the untuned systems (base, few-shot,
    RAG), fine-tune the retriever and the generator (LoRA, RAFT-style), evaluate every system on held-out
    questions (and on yours with --qa), write the report and RUN/winner.json.

    Rerunnable: each step is keyed by the hash of its inputs and settings, so a rerun redoes nothing and,
    after documents change, only what depends on them. Interrupted anywhere, a rerun resumes. The log of
    everything else goes to RUN/run.log."""
    import os
    from pathlib import Path

    from lifecycle.config import RunConfig
    from lifecycle.pipeline import run_lifecycle
    from ragtune.logs import quiet_libraries, setup_logging, use_log_file

    cfg = RunConfig(**options)
    if (
        "RAGTUNE_LOG_LEVEL" not in os.environ
    ):  # the terminal holds the steps; the stages' notes are warnings only
        setup_logging("WARNING")
    quiet_libraries()
    use_log_file(Path(cfg.out) / "run.log")
    if not show_progress:
        os.environ["RAGTUNE_PROGRESS"] = "0"
    run_lifecycle(cfg, echo=click.echo, progress=show_progress)
