"""Retrieval modes, named once for every stage: the kinds, the fusions and the shared CLI options.

`dense` searches the embeddings (FAISS), `bm25` the lexical part of the index, `hybrid` both, fused.
The mode object that searches with them is retriever.RetrievalMode; winner.json records the kind.
"""

from __future__ import annotations

from collections.abc import Callable

import click

KINDS = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")
# Measured on SciFact test (docs/benchmarks.md, "Hybrid retrieval"): hybrid with RRF beat dense and BM25.
DEFAULT_KIND = "hybrid"
RETRIEVAL_HELP = (
    "dense (embeddings), bm25 (lexical) or hybrid (both, fused); default hybrid, or dense on an index "
    "without a lexical part"
)


def retrieval_options(f: Callable | None = None, *, kind_param: str = "retrieval", defaults: bool = True):
    """Add `--retrieval`, `--fusion` and `--fusion-weight` (parameters `kind_param`, fusion, fusion_weight).

    `defaults=False` leaves unset options None, for commands whose settings file or environment fills them."""

    def add(f: Callable) -> Callable:
        f = click.option(
            "--fusion-weight",
            type=float,
            default=0.5 if defaults else None,
            show_default=defaults,
            help="Dense share of a weighted fusion (0: BM25 only, 1: dense only; default 0.5).",
        )(f)
        f = click.option(
            "--fusion",
            type=click.Choice(FUSIONS),
            default="rrf" if defaults else None,
            show_default=defaults,
            help="How hybrid retrieval merges the two rankings: reciprocal rank fusion or weighted scores "
            "(default rrf).",
        )(f)
        return click.option(
            "--retrieval",
            kind_param,
            type=click.Choice(KINDS),
            default=None,
            help=f"Retrieval: {RETRIEVAL_HELP}.",
        )(f)

    return add(f) if f is not None else add
