"""Fixtures of the tuner tests: the tiny world's files and a real index over its documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuner_world import world_rows, write_jsonl


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("world")
    docs, qa = world_rows()
    return {"docs": write_jsonl(d / "docs.jsonl", docs), "qa": write_jsonl(d / "qa.jsonl", qa), "dir": d}


@pytest.fixture(scope="session")
def world_index(world, tmp_path_factory) -> Path:
    """A real ragtune index (FAISS + chunk store, MiniLM) over the world's documents."""
    from ingest import ingest

    out = tmp_path_factory.mktemp("index") / "idx"
    ingest([str(world["docs"])], str(out), show_progress=False)
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    """Tiny models train ~10x faster on one thread when the shared CPU is busy (OpenMP spin-waits);
    the subprocesses started here get the same through OMP_NUM_THREADS."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)
