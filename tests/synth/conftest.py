"""Synth fixtures: real indexes (MiniLM, FAISS, chunk store) over a small world and over nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth_helpers import world_docs, write_docs


@pytest.fixture(scope="session")
def synth_index(tmp_path_factory) -> Path:
    from ingest import ingest

    root = tmp_path_factory.mktemp("synth_world")
    ingest([str(write_docs(root / "docs.jsonl", world_docs()))], str(root / "index"), show_progress=False)
    return root / "index"


@pytest.fixture(scope="session")
def empty_index(tmp_path_factory) -> Path:
    from ingest import ingest

    root = tmp_path_factory.mktemp("synth_empty")
    docs = root / "docs"
    docs.mkdir()
    write_docs(docs / "one.jsonl", world_docs()[:1])
    ingest([str(docs)], str(root / "index"), show_progress=False)
    (docs / "one.jsonl").unlink()  # its deletion publishes a version with no chunks
    ingest([str(docs)], str(root / "index"), show_progress=False)
    return root / "index"
