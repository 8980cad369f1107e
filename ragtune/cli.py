"""The `ragtune` command line.

Every stage's commands live in that stage's own `cli.py`; this file only names them and imports a
stage when its command runs (click's documented lazy-loading group), so `ragtune --help` stays fast
and no stage is imported at package import time.
"""

from __future__ import annotations

import importlib
import sys

import click

from ragtune import __version__
from ragtune.errors import RagtuneError
from ragtune.logs import setup_logging

# name -> "module:attribute" of a click command or group, imported only when used.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("ingest.cli:ingest", "Ingest documents into a knowledge index (refreshes by content hash)."),
    "index": ("ingest.cli:index", "List, roll back and prune index versions."),
    "data": (
        "ingest.data_cli:data",
        "Import SQuAD, BEIR or PubMedQA as documents + train/validation/test QA.",
    ),
    "search": ("retriever.cli:search", "Search a knowledge index."),
    "tune": ("tuner.cli:tune", "Fine-tune the generator or the retriever (LoRA, DoRA, QLoRA, ...)."),
    "export": ("tuner.cli:export", "Merge an adapter into a plain Hugging Face model folder."),
    "check-prompt": ("tuner.cli:check_prompt", "Check that training and serving render the same tokens."),
    "base": ("tuner.base_cli:base", "Build the tiny embedded base generator."),
    "feedback": (
        "tuner.feedback_cli:feedback",
        "Turn the ratings and corrections of served answers into SFT rows and preference pairs.",
    ),
    "serve": ("serve.cli:serve", "Serve the OpenAI-compatible RAG chat endpoint."),
    "eval": ("eval.cli:eval_group", "Compare base, RAG, fine-tune and both; score predictions."),
    "run": (
        "lifecycle.cli:run",
        "Your documents through the whole lifecycle: index, questions, tuning, verdict, winner.",
    ),
    "demo": ("demo.cli:demo", "Run ragtune's main job end to end on the embedded defaults."),
    "synth": (
        "synth.cli:synth",
        "Generate checked question-answer pairs from an index's chunks (split by document).",
    ),
    "models": (
        "ragtune.models_cli:models",
        "List the embedded default models (`default`) and where they live.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            target, _ = self.lazy[name]
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table above so `--help` imports no stage.
        rows = [(name, help_) for name, (_, help_) in sorted(self.lazy.items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ragtune")
@click.option(
    "--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default INFO, or $RAGTUNE_LOG_LEVEL)."
)
def cli(log_level: str | None) -> None:
    """ragtune: teach a language model a body of knowledge by retrieval, fine-tuning or both."""
    setup_logging(log_level)


def main() -> None:
    try:
        cli.main(prog_name="ragtune", standalone_mode=True)
    except RagtuneError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
