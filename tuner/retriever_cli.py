"""`ragtune tune retriever`: fine-tune the embedder on QA pairs (added to the `tune` group)."""

from __future__ import annotations

import click

from ragtune.models import RETRIEVER_HELP


@click.command("retriever")
@click.option(
    "--data", "data", required=True, type=click.Path(dir_okay=False), help="QA .jsonl with doc_ids."
)
@click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False), help="ragtune index.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--base", "base", default=None, help=f"Retriever to start from: {RETRIEVER_HELP} (the default)."
)
@click.option("--epochs", default=1, show_default=True, type=int)
@click.option("--batch-size", default=16, show_default=True, type=int)
@click.option("--lr", "learning_rate", default=2e-4, show_default=True, type=float)
@click.option("--hard-negatives", default=1, show_default=True, type=int, help="Mined per question.")
@click.option("--lora-r", default=8, show_default=True, type=int)
@click.option("--val-fraction", default=0.2, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--retrieval",
    type=click.Choice(["dense", "bm25", "hybrid"]),
    default="dense",
    show_default=True,
    help="How hard negatives are mined from the index: the base encoder's ranking, BM25's, or both fused.",
)
def retriever(**kwargs) -> None:
    """LoRA-tune the retriever with in-batch and mined hard negatives; export a merged model."""
    from ragtune.logs import quiet_libraries
    from tuner.retriever_train import train_retriever

    quiet_libraries()

    result = train_retriever(**kwargs)
    click.echo(result.summary())
