"""`ragtune data import {squad,beir,pubmedqa} SOURCE --out DIR`: public datasets as ragtune files."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

FRACTION = click.FloatRange(0, 1, max_open=True)


@click.group("data")
def data() -> None:
    """Bring public datasets into ragtune's formats."""


@data.command("import")
@click.argument("fmt", metavar="{squad|beir|pubmedqa}", type=click.Choice(["squad", "beir", "pubmedqa"]))
@click.argument("source", type=click.Path())
@click.option(
    "--out",
    "out_dir",
    required=True,
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Folder for documents.jsonl, train.jsonl, validation.jsonl, test.jsonl (replaced atomically).",
)
@click.option(
    "--validation-fraction",
    default=0.1,
    show_default=True,
    type=FRACTION,
    help="Share of the sources (SQuAD articles, PubMedQA abstracts) whose questions go to validation.",
)
@click.option(
    "--test-fraction",
    default=0.5,
    show_default=True,
    type=FRACTION,
    help="Share of the sources whose questions go to test; unused where the dataset has an official "
    "test split (BEIR qrels, PubMedQA's test_ground_truth.json).",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the split (same seed, same split)."
)
@click.option(
    "--test-ids",
    default=None,
    type=click.Path(dir_okay=False),
    help="PubMedQA: JSON naming the test PMIDs (default: test_ground_truth.json beside SOURCE, if any).",
)
@click.option(
    "--disjoint",
    is_flag=True,
    help="BEIR: drop train/validation queries sharing a gold document with a "
    "test query (BEIR's own splits may share some; SQuAD and PubMedQA splits never do).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(
    fmt, source, out_dir, validation_fraction, test_fraction, seed, test_ids, disjoint, as_json
) -> None:
    """Import SOURCE (SQuAD v1.1/v2 JSON, a BEIR folder, PubMedQA's ori_pqal.json or its folder) into DIR.

    Writes DIR/documents.jsonl (ragtune documents) and DIR/{train,validation,test}.jsonl (QA examples
    with gold doc_ids), split by source so that no test question's source is seen in training. BEIR
    has no answer text: a query's answer is the titles of its gold documents.
    """
    from ingest.datasets import import_dataset

    r = import_dataset(
        fmt,
        source,
        out_dir,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        seed=seed,
        test_ids=test_ids,
        disjoint=disjoint,
    )
    if as_json:
        click.echo(json.dumps(asdict(r), indent=2))
        return
    click.echo(f"imported {fmt} {source} -> {out_dir} (seed {seed})")
    click.echo(f"  documents.jsonl   {r.documents} documents")
    for split, n in r.questions.items():
        click.echo(f"  {split + '.jsonl':<17} {n} questions from {r.groups[split]} {r.group_noun}")
    if r.shared_test_docs:
        kept = (
            f"dropped {r.dropped_shared} train/validation questions"
            if disjoint
            else "kept; --disjoint drops them"
        )
        click.echo(
            f"  note: {r.shared_test_docs} gold documents of test questions are also gold for train/validation "
            f"questions ({kept})"
        )
    for note in r.notes:
        click.echo(f"  note: {note}")
