"""`ragtune synth --index IDX --out DIR`: question-answer pairs from an index's chunks."""

from __future__ import annotations

import json

import click

from synth.config import config_help

_HELP = config_help()


@click.command("synth")
@click.option("--index", required=True, type=click.Path(file_okay=False), help=_HELP["index"])
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help=_HELP["out_dir"])
@click.option("--generator", default="default", show_default=True, help=_HELP["generator"])
@click.option(
    "--api-key", default=None, envvar="RAGTUNE_API_KEY", help=_HELP["api_key"] + " [env: RAGTUNE_API_KEY]"
)
@click.option("--model", default=None, help=_HELP["model"])
@click.option(
    "--writer",
    type=click.Choice(["auto", "generator", "template"]),
    default="template",
    show_default=True,
    help=_HELP["writer"],
)
@click.option(
    "-n", "--questions-per-chunk", default=2, show_default=True, type=int, help=_HELP["questions_per_chunk"]
)
@click.option("--seed", default=0, show_default=True, type=int, help=_HELP["seed"])
@click.option("--max-tokens", default=32, show_default=True, type=int, help=_HELP["max_tokens"])
@click.option("--batch-size", default=8, show_default=True, type=int, help=_HELP["batch_size"])
@click.option("--max-chunks", default=None, type=int, help=_HELP["max_chunks"])
@click.option("--min-chunk-words", default=8, show_default=True, type=int, help=_HELP["min_chunk_words"])
@click.option("--max-answer-words", default=8, show_default=True, type=int, help=_HELP["max_answer_words"])
@click.option("--dedup-threshold", default=0.7, show_default=True, type=float, help=_HELP["dedup_threshold"])
@click.option("--read-back/--no-read-back", default=True, show_default=True, help=_HELP["read_back"])
@click.option(
    "--validation-fraction", default=0.1, show_default=True, type=float, help=_HELP["validation_fraction"]
)
@click.option("--test-fraction", default=0.2, show_default=True, type=float, help=_HELP["test_fraction"])
@click.option("--resume/--no-resume", default=True, show_default=True, help=_HELP["resume"])
@click.option(
    "--progress/--no-progress", "show_progress", default=True, help="Show a progress bar on stderr."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def synth(show_progress: bool, as_json: bool, **options) -> None:
    """Write question-answer pairs from the chunks of --index, answer first: pick each chunk's best
    answer spans (identifiers, numbers and dates, names, defined terms, noun phrases), write a question
    for each (--writer), keep those that pass the checks (answer a short span of its chunk, not in its
    question, read back by the generator from the chunk, no near duplicate), and split them by source
    document into DIR/train.jsonl, validation.jsonl and test.jsonl (QA with doc_ids and context, for
    `ragtune tune generator --mode raft`, `ragtune tune retriever` and `ragtune eval`).

    Resumable: the generator's questions are saved to DIR/synth-progress.jsonl (read-backs to
    DIR/synth-readback.jsonl) as they are made; a rerun with the same settings generates only what is
    missing. Drops are counted by reason and by writer in DIR/synth_report.json.
    """
    from ragtune.logs import quiet_libraries
    from synth import SynthConfig, synthesize

    quiet_libraries()  # no weight-loading bars: the synth bar and summary are the command's output
    report = synthesize(SynthConfig(**options), progress=show_progress)
    click.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.summary())
