"""Fixtures of the ingest tests: one real MiniLM Encoder per session and a tiny corpus made on the fly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ingest_helpers import FACTS, write_tree

# `from conftest import run_cli` resolves to this file inside tests/ingest: re-export the lead's helper.
_spec = importlib.util.spec_from_file_location("_tests_root_conftest", Path(__file__).parents[1] / "conftest.py")
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
run_cli = _root.run_cli


@pytest.fixture(scope="session")
def encoder(embedder_dir):
    from retriever import Encoder

    return Encoder(embedder_dir)


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_tree(tmp_path / "src", FACTS)
