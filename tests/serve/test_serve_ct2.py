"""The CTranslate2 backend in process on a tiny real model: same greedy text as transformers, streaming, stop
sequences, seeded reruns, cancellation, the cached conversion."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from serve_helpers import pick_stop, stream_then_abandon

# The transformers backend's contract tests for max_tokens, stop sequences and a cancelled row, collected here
# too: pytest runs them with this module's `gen`, the CTranslate2 backend.
from test_serve_backend import (  # noqa: F401
    test_a_cancelled_row_leaves_the_batch_and_the_others_finish,
    test_max_tokens_and_stop,
)

from ragtune.prompt import build_messages

pytest.importorskip("ctranslate2")

QUESTIONS = [
    "hi",
    "What is the capital of Avalon and why is it on a river?",
    "Tomas",
    "Who founded Brightwater?",
]


def msgs(q: str) -> list[dict]:
    return build_messages(q)


@pytest.fixture(scope="module")
def cache(module_tmp) -> Path:
    mp = pytest.MonkeyPatch()
    out = module_tmp("ct2_cache")
    mp.setenv("RAGTUNE_CACHE_DIR", str(out))
    yield out
    mp.undo()


@pytest.fixture(scope="module")
def gen(chatty_generator, cache):
    from serve import load_generator

    g = load_generator(chatty_generator, backend="ctranslate2", compute_type="float32")
    yield g
    asyncio.run(g.backend.aclose())


def test_greedy_matches_transformers_batched_or_alone(gen, hf):
    batch = gen.generate([msgs(q) for q in QUESTIONS], max_tokens=16)
    ref = hf.generate([msgs(q) for q in QUESTIONS], max_tokens=16)
    for q, c, r in zip(QUESTIONS, batch, ref):
        [solo] = gen.generate([msgs(q)], max_tokens=16)
        assert c == solo == r  # text, token counts and finish reason
    assert gen.backend.kind == "ctranslate2" and gen.backend.compute_type == "float32"


def test_int8_runs_and_mostly_agrees(chatty_generator, cache, hf):
    from serve.backends import Generator
    from serve.ct2_backend import CTranslate2Backend

    be = CTranslate2Backend(chatty_generator, compute_type="int8")
    [c] = Generator(be).generate([msgs(QUESTIONS[1])], max_tokens=12)
    [r] = hf.generate([msgs(QUESTIONS[1])], max_tokens=12)
    assert (c.completion_tokens, c.finish_reason) == (r.completion_tokens, r.finish_reason)
    assert c.text[:4] == r.text[:4]  # int8 weights: the first tokens agree with fp32 on this model


def test_eos_ends_the_generation(gen):
    from serve.types import SamplingOptions

    be = gen.backend
    [first] = gen.generate([msgs("hi")], max_tokens=1)
    first_id = be.tokenizer.encode(first.text, add_special_tokens=False)[0]
    eos = set(be.eos_ids)
    try:  # make the model's first greedy token its end-of-sequence token
        be.eos_ids.clear()
        be.eos_ids.add(first_id)
        [c] = be.generate_prepared([be.prepare(msgs("hi")).prompt_ids], SamplingOptions(max_tokens=10))
    finally:
        be.eos_ids.clear()
        be.eos_ids.update(eos)
    assert (c.text, c.completion_tokens, c.finish_reason) == ("", 1, "stop")


def test_seeded_reruns_are_identical(gen):
    a = gen.generate([msgs(q) for q in QUESTIONS], max_tokens=12, seed=3)
    b = gen.generate([msgs(q) for q in QUESTIONS], max_tokens=12, seed=3)
    assert a == b
    # sampled requests run on the transformers engine, whose per-request seeds CTranslate2 cannot honour
    s1 = gen.generate([msgs("hi")] * 2, max_tokens=12, seed=5, temperature=1.0)
    s2 = gen.generate([msgs("hi")], max_tokens=12, seed=5, temperature=1.0)
    s3 = gen.generate([msgs("hi")], max_tokens=12, seed=6, temperature=1.0)
    assert s1[0] == s1[1] == s2[0] and s3[0].text != s2[0].text


def test_streaming_and_closing_a_stream_cancels_it(chatty_generator, cache, gen):
    from serve.ct2_backend import CTranslate2Backend
    from serve.types import SamplingOptions

    sizes: list[int] = []
    be = CTranslate2Backend(
        chatty_generator, compute_type="float32", batch_window_ms=50, on_batch=sizes.append
    )

    async def one(q):
        parts = [d async for d in be.stream(be.prepare(msgs(q)), SamplingOptions(max_tokens=12))]
        assert parts[-1].finish_reason == "length" and parts[-1].completion_tokens == 12
        assert len(parts) > 1  # streamed, not one final piece
        return "".join(d.text for d in parts)

    texts, spent = stream_then_abandon(be, one, QUESTIONS, 400)
    assert max(sizes) > 1  # requests that arrive together share a batch
    assert texts == [c.text for c in gen.generate([msgs(q) for q in QUESTIONS], max_tokens=12)]
    assert spent < 100  # the abandoned 400-token request stopped at once (+12 for the next request)


def test_the_conversion_is_cached_by_folder_hash(chatty_generator, cache, gen, tmp_path):
    import shutil

    from serve.ct2_backend import converted_dir

    first = converted_dir(chatty_generator, "float32")
    assert first == gen.backend.ct2_dir and first.parent == cache / "ctranslate2"
    mtime = (first / "model.bin").stat().st_mtime_ns
    assert converted_dir(chatty_generator, "float32") == first  # not converted again
    assert (first / "model.bin").stat().st_mtime_ns == mtime
    copy = tmp_path / "merged"
    shutil.copytree(chatty_generator, copy)
    assert converted_dir(copy, "float32") == first  # same weights, same conversion
    (copy / "generation_config.json").write_text('{"eos_token_id": 1}')
    assert converted_dir(copy, "float32") != first


def test_the_backend_is_selectable_and_missing_extra_says_how_to_install(monkeypatch):
    import builtins

    from ragtune.errors import RagtuneError
    from serve.backends import BACKENDS, resolve_backend
    from serve.ct2_backend import CTranslate2Backend

    assert "ctranslate2" in BACKENDS and resolve_backend("ctranslate2") == "ctranslate2"
    real = builtins.__import__

    def no_ct2(name, *a, **kw):
        if name == "ctranslate2":
            raise ImportError("no ctranslate2")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ct2)
    with pytest.raises(RagtuneError, match=r"ragtune\[ct2\]"):
        CTranslate2Backend("/nonexistent")


def test_served_over_http_with_sources_streaming_and_stop(chatty_generator, index_dir, cache):
    import httpx
    from openai import OpenAI
    from serve_helpers import API_KEY

    from serve import start_server

    handle = start_server(
        chatty_generator,
        index_dir,
        api_key=API_KEY,
        extra_args=["--backend", "ctranslate2", "--ct2-compute-type", "float32", "--poll-interval", "0"],
        env={"RAGTUNE_CACHE_DIR": str(cache)},
    )
    try:
        assert httpx.get(f"{handle.url}/readyz", timeout=10).json()["backend"] == "ctranslate2"
        with OpenAI(base_url=handle.base_url, api_key=API_KEY, max_retries=0, timeout=60) as c:
            question = [{"role": "user", "content": QUESTIONS[3]}]
            kw = {"model": Path(chatty_generator).name, "messages": question, "max_tokens": 16}
            whole = c.chat.completions.create(**kw)
            assert whole.model_extra["sources"] and whole.choices[0].finish_reason == "length"
            chunks = list(c.chat.completions.create(**kw, stream=True))
            assert chunks[0].model_extra["sources"] == whole.model_extra["sources"]
            pieces = [
                ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content
            ]
            assert len(pieces) > 1 and "".join(pieces) == whole.choices[0].message.content
            stop = pick_stop(whole.choices[0].message.content)
            cut = c.chat.completions.create(**kw, stop=[stop])
            text = whole.choices[0].message.content
            assert cut.choices[0].message.content == text[: text.find(stop)]
            assert cut.choices[0].finish_reason == "stop"
    finally:
        handle.stop()
