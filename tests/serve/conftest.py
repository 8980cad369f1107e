"""Serve fixtures: a tiny model that emits text, a real index, `ragtune serve` on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from serve_helpers import API_KEY, DOCS, write_docs


@pytest.fixture(scope="session")
def chatty_generator(tiny_generator, tmp_path_factory) -> Path:
    """tiny_generator with an untied random output layer: still untrained, but its greedy text is non-empty
    (the tied original only repeats a special token), so stop sequences and streaming have text to act on."""
    import torch
    from transformers import AutoModelForCausalLM

    from ragtune.artifacts import write_artifact

    out = tmp_path_factory.mktemp("chatty_generator")
    for f in Path(tiny_generator).iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_generator), local_files_only=True)
    gen = torch.Generator().manual_seed(1)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=gen) * 0.5)
    model.save_pretrained(out)
    write_artifact(out, base_model="tiny", method="untrained")
    return out


@pytest.fixture(scope="session")
def encoder():
    from retriever import Encoder

    return Encoder()


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory, encoder) -> Path:
    from ingest import ingest

    root = tmp_path_factory.mktemp("serve_index")
    src = write_docs(root / "docs.jsonl", DOCS)
    ingest([src], root / "index", encoder=encoder, show_progress=False)
    return root / "index"


@pytest.fixture(scope="session")
def server(chatty_generator, index_dir):
    """`ragtune serve` in a subprocess (through start_server), with an API key; stopped at session end."""
    from serve import start_server

    handle = start_server(
        chatty_generator,
        index_dir,
        api_key=API_KEY,
        extra_args=["--max-tokens-cap", "64", "--poll-interval", "0"],
    )
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    with OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def model_id(chatty_generator) -> str:
    return Path(chatty_generator).name


@pytest.fixture(scope="module")
def hf(chatty_generator):
    """The transformers backend in fp32 on chatty_generator: the reference the other engines are checked
    against."""
    import asyncio

    from serve import load_generator

    g = load_generator(chatty_generator, prefill_precision="float32")
    yield g
    asyncio.run(g.backend.aclose())
