"""`ragtune search "QUERY" --index DIR -k 10 [--retrieval dense|bm25|hybrid] [--json]`."""

from __future__ import annotations

import json

import click

from ragtune.errors import RagtuneError
from ragtune.models import RETRIEVER_HELP
from ragtune.retrieval import retrieval_options


@click.command("search")
@click.argument("query")
@click.option("--index", "index", default=None, help="Index folder; $RAGTUNE_INDEX.")
@click.option("-k", "k", default=10, show_default=True, type=int, help="Passages to return.")
@click.option(
    "--retriever", default=None, help=f"Retriever: {RETRIEVER_HELP}; unset: the one that built the index."
)
@retrieval_options
@click.option("--json", "as_json", is_flag=True, help="Print the passages as a JSON list.")
def search(query, index, k, retriever, retrieval, fusion, fusion_weight, as_json) -> None:
    """Search a knowledge index and print the top-k passages."""
    from ragtune.settings import load_settings
    from retriever import RetrievalMode, Retriever

    s = load_settings(index=index, retriever=retriever)
    if s.index is None:
        raise RagtuneError("no index folder; pass --index DIR (or set RAGTUNE_INDEX)")
    if k < 1:
        raise RagtuneError(f"-k must be at least 1, got {k}")
    r = Retriever.open(
        s.index, retriever=s.retriever, mode=RetrievalMode.from_options(retrieval, fusion, fusion_weight)
    )
    passages = r.search(query, k)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in passages], indent=1, ensure_ascii=False))
        return
    for i, p in enumerate(passages, 1):
        click.echo(f"{i:>2}. {p.score:.4f}  {p.chunk_id}  {p.title or p.source}")
        click.echo("    " + p.text[:300].replace("\n", " "))
