"""The CPU decode path (serve/kv_cache.py, serve/cpu_linear.py): same numbers as transformers' own pieces."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicLayer

from ragtune.prompt import build_messages
from serve.kv_cache import GrowingLayer, gqa_sdpa

QUESTIONS = ["hi", "What is the capital of Avalon and why is it on a river?", "Who founded Brightwater?"]


def _kv(gen: torch.Generator, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 2, length, 8, generator=gen), torch.randn(batch, 2, length, 8, generator=gen)


def _select(layer, rows):
    layer.batch_select_indices(torch.tensor(rows))


def _left_pad(layer, pad):
    layer.keys = F.pad(layer.keys, (0, 0, pad, 0))
    layer.values = F.pad(layer.values, (0, 0, pad, 0))


# each step: ("add", new positions) or an operation the backend applies between steps
CASES = {
    "prefill-then-steps": [("add", 5), ("add", 1), ("add", 1), ("add", 1)],
    "grows-past-its-spare-room": [("add", 3)] + [("add", 1)] * 140 + [("add", 40)],
    "finished-rows-dropped": [("add", 6), ("add", 1), ("select", [0, 2]), ("add", 1), ("add", 1)],
    "merged-with-left-padding": [("add", 4), ("add", 1), ("pad", 3), ("add", 1), ("add", 2)],
}


@pytest.mark.parametrize("ops", CASES.values(), ids=CASES.keys())
def test_growing_layer_holds_what_a_dynamic_layer_holds(ops):
    gen = torch.Generator().manual_seed(0)
    ours, ref = GrowingLayer(), DynamicLayer()
    batch = 3
    for op, arg in ops:
        if op == "add":
            k, v = _kv(gen, batch, arg)
            got, want = ours.update(k, v), ref.update(k, v)
            assert all(torch.equal(g, w) for g, w in zip(got, want))
        elif op == "select":
            _select(ours, arg), _select(ref, arg)
            batch = len(arg)
        else:
            _left_pad(ours, arg), _left_pad(ref, arg)
    assert torch.equal(ours.keys, ref.keys) and torch.equal(ours.values, ref.values)
    assert ours.get_seq_length() == ref.get_seq_length()


@pytest.mark.parametrize("q_len", [1, 7], ids=["decode", "prefill"])
def test_gqa_attention_equals_repeated_heads(q_len):
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(2, 6, q_len, 8, generator=gen)
    k, v = torch.randn(2, 2, 9, 8, generator=gen), torch.randn(2, 2, 9, 8, generator=gen)
    mask = torch.ones(2, 1, q_len, 9, dtype=torch.bool)
    mask[1, :, :, :3] = False  # row 1 left-padded by 3
    module = torch.nn.Module()
    got, _ = gqa_sdpa(module, q, k, v, mask, scaling=0.3)
    want = F.scaled_dot_product_attention(
        q, k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1), attn_mask=mask, scale=0.3
    ).transpose(1, 2)
    assert got.shape == (2, q_len, 6, 8)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_decode_rows_attention_is_what_it_gets_alone():
    """Rows of a left-padded decode batch (~1,000 keys, paddings that move the kernel's key blocks) get
    bit for bit the attention each gets alone, without padding or mask."""
    gen = torch.Generator().manual_seed(3)
    width, pads = 1100, [0, 37, 613]
    q = torch.randn(3, 6, 1, 64, generator=gen)
    k, v = torch.randn(3, 2, width, 64, generator=gen), torch.randn(3, 2, width, 64, generator=gen)
    mask = torch.ones(3, 1, 1, width, dtype=torch.bool)
    for r, pad in enumerate(pads):
        mask[r, :, :, :pad] = False
        k[r, :, :pad], v[r, :, :pad] = 0, 0
    module = torch.nn.Module()
    got, _ = gqa_sdpa(module, q, k, v, mask, scaling=0.125)
    for r, pad in enumerate(pads):
        alone, _ = gqa_sdpa(
            module, q[r : r + 1], k[r : r + 1, :, pad:], v[r : r + 1, :, pad:], None, scaling=0.125
        )
        assert torch.equal(got[r : r + 1], alone)


@pytest.fixture(scope="module")
def gqa_model(chatty_generator, module_tmp) -> Path:
    """chatty_generator's tokenizer on a random model with 4 query heads sharing 2 key/value heads."""
    from transformers import AutoConfig, AutoModelForCausalLM

    out = module_tmp("gqa_generator")
    for f in Path(chatty_generator).iterdir():
        if f.is_file() and not f.name.endswith((".safetensors", "config.json")):
            shutil.copy(f, out / f.name)
    config = AutoConfig.from_pretrained(str(chatty_generator))
    config.num_key_value_heads = config.num_attention_heads // 2
    torch.manual_seed(2)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


def _joined_run(backend, prompts: list[list[int]]) -> list[str]:
    """The first two prompts prefilled together, 5 decode steps, the third joining the running batch."""
    from serve.decoding import Job

    parts: list[list] = [[] for _ in prompts]
    jobs = [Job(p, _opts(), parts[i].append) for i, p in enumerate(prompts)]
    batch = backend._prefill(jobs[:2])
    for _ in range(5):
        batch = backend._step(batch)
    batch = backend._merge(batch, backend._prefill(jobs[2:]))
    while batch is not None:
        batch = backend._step(batch)
    return ["".join(d.text for d in ds) for ds in parts]


@pytest.mark.parametrize("model", ["chatty", "gqa"])
def test_cpu_kernels_give_the_tokens_of_transformers_own_path(model, chatty_generator, gqa_model):
    from serve.hf_backend import TransformersBackend

    folder = chatty_generator if model == "chatty" else gqa_model
    fast = TransformersBackend(folder, prefill_precision="float32")
    plain = TransformersBackend(folder, cpu_kernels=False, prefill_precision="float32")
    assert fast._growing and not plain._growing
    assert not any(type(m) is torch.nn.Linear for m in fast.model.modules())
    msgs = [build_messages(q) for q in QUESTIONS]
    got = [c for c in fast.generate_prepared([fast.prepare(m).prompt_ids for m in msgs], _opts())]
    want = [c for c in plain.generate_prepared([plain.prepare(m).prompt_ids for m in msgs], _opts())]
    assert [(c.text, c.completion_tokens) for c in got] == [(c.text, c.completion_tokens) for c in want]
    assert sum(c.completion_tokens for c in got) > 3 * 4  # really generated something to compare
    prompts = [fast.prepare(m).prompt_ids for m in msgs]
    assert _joined_run(fast, prompts) == _joined_run(plain, prompts) == [c.text for c in want]
    for be in (fast, plain):
        asyncio.run(be.aclose())


def _opts():
    from serve.types import SamplingOptions

    return SamplingOptions(max_tokens=24)


def test_bf16_prefill_keeps_an_fp32_cache_and_close_logits(chatty_generator):
    from serve.decoding import Job
    from serve.hf_backend import TransformersBackend

    fp32, mixed = (
        TransformersBackend(chatty_generator, prefill_precision="float32"),
        TransformersBackend(chatty_generator, prefill_precision="bf16-autocast", weight_precision="float32"),
    )
    ids = fp32.prepare(build_messages(QUESTIONS[1])).prompt_ids
    a = fp32._prefill([Job(ids, _opts(), lambda d: None)])
    b = mixed._prefill([Job(ids, _opts(), lambda d: None)])
    assert b.logits.dtype == torch.float32
    assert all(layer.keys.dtype == torch.float32 for layer in b.past.layers)
    assert not torch.equal(a.logits, b.logits)  # bf16 matmuls really ran
    torch.testing.assert_close(b.logits, a.logits, rtol=0.05, atol=0.05)
    while b is not None:  # decode continues on the fp32 cache
        b = mixed._step(b)


@pytest.mark.parametrize("chunk", [7, 40, 4096], ids=["7-tokens", "40-tokens", "whole-prompt"])
def test_a_prompt_prefilled_in_chunks_between_decode_steps_gets_its_tokens(chatty_generator, chunk):
    """The worker's chunked prefill: a newcomer's prompt goes in `chunk`-token pieces, one per decode step
    of the running row; both rows end with the text they get alone."""
    from serve.decoding import Job
    from serve.hf_backend import TransformersBackend

    be = TransformersBackend(  # no prefix reuse: the two prompts share their system prompt's chunks
        chatty_generator, prefill_chunk_tokens=chunk, prefill_precision="float32", prefix_cache_mb=0
    )
    first, late = (be.prepare(build_messages(q)).prompt_ids for q in QUESTIONS[1:])
    parts: list[list] = [[], []]
    running = be._prefill([Job(first, _opts(), parts[0].append)])
    [pending] = be._start_prefill([Job(late, _opts(), parts[1].append)])
    chunks = 0
    while pending is not None:
        fresh, chunks = be._advance(pending), chunks + 1
        running = be._step(running)
        if fresh is not None:
            running, pending = be._merge(running, fresh), None
    while running is not None:
        running = be._step(running)
    assert chunks == -(-len(late) // chunk)  # ceil
    solo = be.generate_prepared([first, late], _opts())
    assert ["".join(d.text for d in p) for p in parts] == [c.text for c in solo]


@pytest.mark.parametrize(
    ("prefill", "weights"), [("float32", "float32"), ("bf16-autocast", "float32"), ("bf16-autocast", "bf16")]
)
def test_a_prompts_prefill_does_not_depend_on_what_it_was_batched_with(chatty_generator, prefill, weights):
    """Served answers must not change with the load: a prompt prefilled alone, with others, or while a
    row decodes gets bit-identical first logits and cache (bf16 rounding differs between batch shapes,
    so prompts are never prefilled in one forward together)."""
    from serve.decoding import Job
    from serve.hf_backend import TransformersBackend

    be = TransformersBackend(
        chatty_generator,
        prefill_chunk_tokens=24,
        prefill_precision=prefill,
        weight_precision=weights,
        prefix_cache_mb=0,  # every prefill computed, none reused
    )
    ids = [be.prepare(build_messages(q)).prompt_ids for q in QUESTIONS]
    alone = be._prefill([Job(ids[0], _opts(), lambda d: None)])
    crowd = be._prefill([Job(p, _opts(), lambda d: None) for p in (ids[1], ids[0], ids[2])])
    [late] = be._start_prefill([Job(ids[0], _opts(), lambda d: None)])
    running = be._prefill([Job(ids[2], _opts(), lambda d: None)])
    while (fresh := be._advance(late)) is None:
        running = be._step(running)
    width, n = crowd.mask.shape[1], len(ids[0])
    assert torch.equal(crowd.logits[1], alone.logits[0]) and torch.equal(fresh.logits, alone.logits)
    for la, lc, lf in zip(alone.past.layers, crowd.past.layers, fresh.past.layers):
        assert torch.equal(lc.keys[1, :, width - n :], la.keys[0]) and torch.equal(lf.keys, la.keys)
        assert torch.equal(lc.values[1, :, width - n :], la.values[0])
    assert crowd.mask[1].tolist() == [0] * (width - n) + [1] * n
    asyncio.run(be.aclose())
