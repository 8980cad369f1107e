"""Prompt-prefix reuse: a repeated prompt, or one that shares a chunk-aligned prefix with a recent one,
resumes from the cached KV states and gets the very logits and cache a fresh prefill gives."""

from __future__ import annotations

import asyncio

import pytest
import torch

from ragtune.prompt import build_messages

CHUNK = 16


def _job(ids):
    from serve.decoding import Job
    from serve.types import SamplingOptions

    return Job(list(ids), SamplingOptions(max_tokens=12), lambda d: None)


def _backend(folder, mb, prefill="bf16-autocast", weights="bf16"):
    from serve.hf_backend import TransformersBackend

    return TransformersBackend(
        folder,
        prefill_chunk_tokens=CHUNK,
        prefill_precision=prefill,
        weight_precision=weights,
        prefix_cache_mb=mb,
    )


def _same(a, b) -> bool:
    return torch.equal(a.logits, b.logits) and all(
        torch.equal(x.keys, y.keys) and torch.equal(x.values, y.values)
        for x, y in zip(a.past.layers, b.past.layers)
    )


@pytest.mark.parametrize(("prefill", "weights"), [("float32", "float32"), ("bf16-autocast", "bf16")])
def test_reused_prefixes_give_the_states_of_a_fresh_prefill(chatty_generator, prefill, weights):
    cached, fresh = (
        _backend(chatty_generator, 64, prefill, weights),
        _backend(chatty_generator, 0, prefill, weights),
    )
    first = cached.prepare(
        build_messages("What is the capital of Avalon and why is it on a river?")
    ).prompt_ids
    other = cached.prepare(build_messages("Who founded Brightwater, and when?")).prompt_ids
    shared = next(i for i, (a, b) in enumerate(zip(first, other)) if a != b)  # the system prompt and more
    assert shared >= CHUNK, "the two prompts must share at least one chunk"
    cached._prefill([_job(first)])
    assert cached.prefix_cache.hits == 0
    again = cached._prefill([_job(first)])  # the whole prompt: no forward at all
    assert cached.prefix_cache.hits == 1 and cached.prefix_cache.tokens_reused == len(first)
    assert _same(again, fresh._prefill([_job(first)]))
    resumed = cached._prefill([_job(other)])  # resumes after the shared chunks
    assert cached.prefix_cache.hits == 2
    assert cached.prefix_cache.tokens_reused == len(first) + shared // CHUNK * CHUNK
    assert _same(resumed, fresh._prefill([_job(other)]))
    assert fresh.prefix_cache.hits == 0
    texts = [c.text for c in cached.generate_prepared([first, other], _job(first).opts)]
    assert texts == [c.text for c in fresh.generate_prepared([first, other], _job(first).opts)]
    for be in (cached, fresh):
        asyncio.run(be.aclose())


def test_the_cache_stays_within_its_budget(chatty_generator):
    probe = _backend(chatty_generator, 64)
    prompts = [probe.prepare(build_messages(q)).prompt_ids for q in ("hi", "hello there", "hey you")]
    probe._prefill([_job(prompts[0])])
    one = probe.prefix_cache.nbytes  # one short prompt's states
    assert one > 0
    be = _backend(chatty_generator, 1.5 * one / 2**20)  # room for one prompt, not two
    for ids in prompts:
        be._prefill([_job(ids)])
    assert len(be.prefix_cache._entries) == 1 and 0 < be.prefix_cache.nbytes <= be.prefix_cache.max_bytes
    reused = be.prefix_cache.tokens_reused
    be._prefill([_job(prompts[0])])  # the oldest went: at most the shared system-prompt chunks come back
    assert be.prefix_cache.tokens_reused - reused < len(prompts[0])
    reused = be.prefix_cache.tokens_reused
    be._prefill([_job(prompts[0])])  # and now it is the one kept
    assert be.prefix_cache.tokens_reused - reused == len(prompts[0])
    for b in (probe, be):
        asyncio.run(b.aclose())
