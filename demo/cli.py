"""`ragtune demo [--quick] [--out DIR]`: ragtune's main job end to end on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command()
@click.option(
    "--quick", is_flag=True, help="Smaller world, fewer training steps (about 5 min); the same steps."
)
@click.option(
    "--out",
    "out_dir",
    default="ragtune-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the world and the run: index, models, predictions, report, winner.json.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed for the world, training and evaluation."
)
@click.option("--no-progress", is_flag=True, help="No progress bars (step lines are still printed).")
@click.option(
    "--generator",
    default="default",
    show_default=True,
    help="Generator every system starts from: a local Hugging Face folder or `default`.",
)
@click.option(
    "--cpu-threads",
    default=None,
    type=click.IntRange(min=1),
    help="torch CPU threads in this process (1 is fastest on a busy machine).",
)
def demo(
    quick: bool, out_dir: str, seed: int, no_progress: bool, generator: str, cpu_threads: int | None
) -> None:
    """Teach the embedded SmolLM2-135M-Instruct a fictional world by RAG, fine-tuning and both: the
    generated world through the same lifecycle as `ragtune run` (compare every system, measure each
    fine-tune's forgetting, write report.html and winner.json), plus an index refresh and its freshness
    check. `ragtune serve --from OUT` then serves the winner."""
    from dataclasses import replace

    from demo.config import PRESETS
    from demo.pipeline import run_demo
    from ragtune.logs import quiet_libraries, use_log_file

    use_log_file(Path(out_dir) / "ragtune.log")  # libraries' warnings: there, named once when first written
    quiet_libraries()
    if no_progress:  # every bar, the trainers' included (ragtune.logs.progress_enabled)
        os.environ["RAGTUNE_PROGRESS"] = "0"
    cfg = replace(
        PRESETS["quick" if quick else "full"], seed=seed, generator=generator, cpu_threads=cpu_threads
    )
    summary = run_demo(Path(out_dir), cfg, echo=click.echo, progress=not no_progress)
    click.echo("")
    click.echo(f"ragtune demo ({cfg.name}) finished in {summary['wall_seconds']:.0f} s")
    for split, systems in summary["headline"].items():
        click.echo(f"  {split}: " + ", ".join(f"{name} {_fmt(v)}" for name, v in systems.items()))
    fresh = summary.get("freshness_new_vs_stale") or {}
    if fresh:
        click.echo(
            "  after the refresh, new / stale answers (%): "
            + ", ".join(f"{name} {_fmt(v['new'])} / {_fmt(v['stale'])}" for name, v in fresh.items())
        )
    for line in summary.get("verdict") or []:
        click.echo(f"  verdict: {line}")
    click.echo(f"report: {summary['report'].get('html', summary['report'])}")


def _fmt(v) -> str:
    if isinstance(v, dict):
        mean, lo, hi = v.get("mean"), v.get("low"), v.get("high")
        if mean is not None and lo is not None and hi is not None:
            return f"{mean:.1f} [{lo:.1f}, {hi:.1f}]"
        return str(mean)
    return "n/a" if v is None else f"{v:.1f}"
