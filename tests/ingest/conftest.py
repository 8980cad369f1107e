"""Fixtures of the ingest tests: one real MiniLM Encoder per session and a tiny corpus made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import FACTS, write_tree


@pytest.fixture(scope="session")
def encoder(embedder_dir):
    from retriever import Encoder

    return Encoder(embedder_dir)


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_tree(tmp_path / "src", FACTS)


@pytest.fixture(scope="module")
def cache(module_tmp):
    """A cache folder of the test module's own ($RAGTUNE_CACHE_DIR), so exports and conversions are made there."""
    with pytest.MonkeyPatch.context() as mp:
        path = module_tmp("cache")
        mp.setenv("RAGTUNE_CACHE_DIR", str(path))
        yield path
