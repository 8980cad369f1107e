"""`ragtune ingest` and `ragtune index list|rollback|prune|add-lexical`."""

from __future__ import annotations

import json

import click

from ragtune.errors import RagtuneError
from ragtune.models import RETRIEVER_HELP


def _index_dir(index: str | None) -> str:
    from ragtune.settings import load_settings

    d = load_settings(index=index).index
    if d is None:
        raise RagtuneError("no index folder; pass --index DIR (or set RAGTUNE_INDEX)")
    return str(d)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--index", "index", default=None, help="Index folder (holds CURRENT and versions/); $RAGTUNE_INDEX."
)
@click.option(
    "--retriever",
    default=None,
    help=f"Retriever to embed with: {RETRIEVER_HELP} (the default); e.g. "
    "the output of `ragtune tune retriever`.",
)
@click.option("--full", is_flag=True, help="Rebuild from scratch: re-read and re-embed everything.")
@click.option("--dry-run", is_flag=True, help="Print the refresh plan only; write nothing.")
@click.option(
    "--keep-missing",
    is_flag=True,
    help="Keep documents that vanished from the sources (default: remove them from the index).",
)
@click.option(
    "--include", multiple=True, help="Glob of files to read inside folders (repeatable), e.g. '*.md'."
)
@click.option("--exclude", multiple=True, help="Glob of files or folders to skip (repeatable).")
@click.option(
    "--chunk-size",
    default=None,
    type=int,
    help="Tokens per chunk (the embedder's tokenizer; clamped to "
    "its max sequence length). Default: as the current version (200 for a new index).",
)
@click.option(
    "--overlap",
    default=None,
    type=int,
    help="Tokens shared by neighbouring chunks. Default: as the current version (40 for a new index).",
)
@click.option(
    "--index-kind",
    type=click.Choice(["auto", "flat", "hnsw", "ivf"]),
    default=None,
    help="FAISS index: flat (exact), hnsw or ivf; auto = flat below 200k chunks, else hnsw. "
    "Default: as the current version (auto for a new index).",
)
@click.option("--hnsw-m", default=None, type=int, help="HNSW graph degree (default 32).")
@click.option("--ef-search", default=None, type=int, help="HNSW search beam (default 128).")
@click.option("--nlist", default=None, type=int, help="IVF lists (default 0: 4*sqrt(chunks)).")
@click.option("--nprobe", default=None, type=int, help="IVF lists probed per query (default 32).")
@click.option("--batch-size", default=64, show_default=True, type=int, help="Texts per encoder batch.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def ingest(
    paths,
    index,
    retriever,
    full,
    dry_run,
    keep_missing,
    include,
    exclude,
    chunk_size,
    overlap,
    index_kind,
    hnsw_m,
    ef_search,
    nlist,
    nprobe,
    batch_size,
    as_json,
) -> None:
    """Ingest PATHS (files, folders, .jsonl, BEIR folders) into a knowledge index, refreshing by content hash."""
    from ingest.pipeline import ingest as run_ingest
    from ragtune.logs import quiet_libraries
    from ragtune.settings import load_settings
    from retriever import Encoder, IndexOptions

    quiet_libraries()  # no "Loading weights" bars: loading the encoder is not a step of ours
    index_dir = _index_dir(index)
    retriever = load_settings(retriever=retriever).retriever
    encoder = Encoder(retriever, batch_size=batch_size)
    given = {
        k: v
        for k, v in {
            "kind": index_kind,
            "hnsw_m": hnsw_m,
            "ef_search": ef_search,
            "nlist": nlist,
            "nprobe": nprobe,
        }.items()
        if v is not None
    }
    opts = IndexOptions(**given) if given else None
    report = run_ingest(
        list(paths),
        index_dir,
        encoder=encoder,
        full=full,
        dry_run=dry_run,
        delete_missing=not keep_missing,
        include=include,
        exclude=exclude,
        chunk_size=chunk_size,
        overlap=overlap,
        index_options=opts,
        show_progress=not as_json,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
    else:
        click.echo(report.summary())


@click.group("index")
def index() -> None:
    """List, roll back and prune the versions of a knowledge index."""


@index.command("list")
@click.option("--index", "index_", default=None, help="Index folder; $RAGTUNE_INDEX.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(index_, as_json) -> None:
    """List the versions (oldest first); * marks the published one."""
    from retriever import list_versions

    rows = list_versions(_index_dir(index_))
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        c = r.get("counts", {})
        mark = "*" if r["current"] else " "
        if "error" in r:
            click.echo(f"{mark} {r['version']}  unreadable: {r['error']}")
            continue
        click.echo(
            f"{mark} {r['version']}  {r.get('created')}  {c.get('documents', '?')} docs  "
            f"{c.get('chunks', '?')} chunks  +{c.get('added', 0)} ~{c.get('changed', 0)} "
            f"-{c.get('removed', 0)}  parent {r.get('parent') or '-'}  {r.get('encoder')} "
            f"{r.get('index_kind')}{' +bm25' if r.get('lexical') else ''}"
        )


@index.command("rollback")
@click.argument("version")
@click.option("--index", "index_", default=None, help="Index folder; $RAGTUNE_INDEX.")
def rollback_cmd(version, index_) -> None:
    """Publish VERSION again (servers pick it up on their next poll)."""
    from retriever import rollback

    d = _index_dir(index_)
    rollback(d, version)
    click.echo(f"{d} now serves version {version}")


@index.command("add-lexical")
@click.option("--index", "index_", default=None, help="Index folder; $RAGTUNE_INDEX.")
def add_lexical_cmd(index_) -> None:
    """Publish the current version again with a lexical (BM25) part, for bm25 and hybrid retrieval.

    Indexes built before ragtune kept one need it; nothing is re-embedded (servers pick it up on their next poll)."""
    from retriever import add_lexical

    d = _index_dir(index_)
    vid = add_lexical(d)
    click.echo(
        f"{d}: version {vid} has a lexical part" if vid else f"{d}: the current version already has one"
    )


@index.command("prune")
@click.option(
    "--keep", default=3, show_default=True, type=int, help="Newest versions to keep (plus the current)."
)
@click.option("--index", "index_", default=None, help="Index folder; $RAGTUNE_INDEX.")
def prune_cmd(keep, index_) -> None:
    """Delete old versions, keeping the newest KEEP and the published one."""
    from retriever import prune

    gone = prune(_index_dir(index_), keep)
    click.echo(f"pruned {len(gone)} version(s){': ' + ', '.join(gone) if gone else ''}")
