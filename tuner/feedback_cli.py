"""`ragtune feedback export`: the ratings a server stored (`serve --feedback-db`) as training data."""

from __future__ import annotations

import click


@click.group("feedback")
def feedback() -> None:
    """Turn the ratings and corrections of served answers into training data."""


@feedback.command("export")
@click.option(
    "--db", required=True, type=click.Path(dir_okay=False), help="The file given to serve --feedback-db."
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the files."
)
@click.option(
    "--test-fraction",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of the source documents whose rows go to sft_test.jsonl / preferences_test.jsonl.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split by document.")
def export(db: str, out_dir: str, test_fraction: float, seed: int) -> None:
    """Write OUT/sft.jsonl (corrections, with their passages), OUT/preferences.jsonl (chosen/rejected pairs)
    and OUT/summary.json (what was kept and dropped)."""
    from tuner.feedback_data import export_feedback

    summary = export_feedback(db, out_dir, test_fraction=test_fraction, seed=seed)
    click.echo(summary.text())
    click.echo(
        f"train on them: ragtune tune generator --data {out_dir}/sft.jsonl ... | "
        f"ragtune tune generator --objective dpo --data {out_dir}/preferences.jsonl ..."
    )
