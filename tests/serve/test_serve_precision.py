"""The transformers backend's CPU arithmetic: bf16 prefill and bf16 weights, chosen by what the CPU has."""

from __future__ import annotations

import asyncio

import pytest
import torch
from torch import nn

from ragtune.prompt import build_messages

AVX512_BF16 = "flags\t\t: fpu sse2 avx512f avx512_bf16\n"
NO_BF16 = "flags\t\t: fpu sse2 avx2 avx512f\n"
QUESTIONS = ["hi", "What is the capital of Avalon and why is it on a river?", "Who founded Brightwater?"]


@pytest.mark.parametrize(
    ("precision", "on_gpu", "cpuinfo", "autocast"),
    [
        ("auto", False, AVX512_BF16, True),
        ("auto", False, NO_BF16, False),
        ("auto", True, AVX512_BF16, False),  # a GPU runs bf16 weights anyway
        ("float32", False, AVX512_BF16, False),
        ("bf16-autocast", False, NO_BF16, True),  # asked for: emulated, but honoured
    ],
)
def test_prefill_precision_choice(precision, on_gpu, cpuinfo, autocast):
    from serve.precision import prefill_autocast

    assert prefill_autocast(precision, on_gpu, cpuinfo) is autocast


def test_an_unknown_prefill_precision_is_refused():
    from serve.precision import prefill_autocast

    with pytest.raises(ValueError, match="one of auto, float32, bf16-autocast"):
        prefill_autocast("fp8", False, AVX512_BF16)


@pytest.mark.parametrize(
    ("weights", "prefill", "on_gpu", "cpuinfo", "resolved"),
    [
        ("auto", "auto", False, AVX512_BF16, "bf16"),
        ("auto", "bf16-autocast", False, AVX512_BF16, "bf16"),
        ("auto", "auto", False, NO_BF16, "float32"),  # emulated bf16 would be slower
        ("auto", "float32", False, AVX512_BF16, "float32"),  # an fp32 reference run stays fp32
        ("bf16", "auto", False, NO_BF16, "bf16"),  # asked for: honoured
        ("float32", "auto", False, AVX512_BF16, "float32"),
        ("auto", "auto", True, AVX512_BF16, "float32"),  # a GPU loads bf16 weights anyway: nothing to swap
    ],
)
def test_weight_precision_choice(weights, prefill, on_gpu, cpuinfo, resolved):
    from serve.precision import resolve_weight_precision

    assert resolve_weight_precision(weights, prefill, on_gpu, cpuinfo) == resolved


@pytest.mark.parametrize(
    ("weights", "prefill", "message"),
    [
        ("fp8", "auto", "one of auto, float32, bf16"),
        ("bf16", "float32", "a float32 prefill needs float32 weights"),
    ],
)
def test_a_weight_precision_that_cannot_run_is_refused(weights, prefill, message):
    from serve.precision import resolve_weight_precision

    with pytest.raises(ValueError, match=message):
        resolve_weight_precision(weights, prefill, False, AVX512_BF16)


@pytest.mark.parametrize("bias", [False, True])
def test_a_bf16_linear_is_the_bf16_product_in_the_callers_dtype(bias):
    from serve.cpu_linear import Bf16Linear, TransposedLinear

    torch.manual_seed(0)
    lin = nn.Linear(64, 48, bias=bias)
    x = torch.randn(3, 64)
    want = nn.functional.linear(
        x.bfloat16(), lin.weight.bfloat16(), None if lin.bias is None else lin.bias.bfloat16()
    )
    for src in (lin, TransposedLinear(lin)):
        b = Bf16Linear(src)
        assert b.weight.dtype == torch.bfloat16 and b.weight.shape == (48, 64)
        with torch.inference_mode():
            y = b(x)
            assert y.dtype == torch.float32 and torch.equal(y, want.float())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert b(x).dtype == torch.bfloat16  # as autocast's own linear would return
        assert (y - lin(x)).abs().max() > 0  # really rounded to bf16
        torch.testing.assert_close(y, lin(x).detach(), rtol=0.05, atol=0.05)


def test_bf16_weights_serve_close_to_fp32(chatty_generator):
    """With bf16 weights every linear layer holds bf16 (half the bytes), the KV cache and logits stay
    fp32, the first logits are close to fp32's, and generation runs to the end."""
    from serve.cpu_linear import Bf16Linear
    from serve.decoding import Job
    from serve.hf_backend import TransformersBackend
    from serve.types import SamplingOptions

    fp32 = TransformersBackend(chatty_generator, weight_precision="float32", prefill_precision="float32")
    half = TransformersBackend(chatty_generator, weight_precision="bf16", prefill_precision="bf16-autocast")
    assert half.weight_precision == "bf16" and fp32.weight_precision == "float32"
    linears = [m for m in half.model.modules() if isinstance(m, (nn.Linear, Bf16Linear))]
    assert linears and all(isinstance(m, Bf16Linear) for m in linears)
    assert half.model.get_input_embeddings().weight.dtype == torch.float32  # the lookup keeps fp32
    ids = fp32.prepare(build_messages(QUESTIONS[1])).prompt_ids
    a = fp32._prefill([Job(ids, SamplingOptions(max_tokens=8), lambda d: None)])
    b = half._prefill([Job(ids, SamplingOptions(max_tokens=8), lambda d: None)])
    assert b.logits.dtype == torch.float32 and all(la.keys.dtype == torch.float32 for la in b.past.layers)
    assert not torch.equal(a.logits, b.logits)
    torch.testing.assert_close(b.logits, a.logits, rtol=0.1, atol=0.1)
    [done] = half.generate_prepared([ids], SamplingOptions(max_tokens=8))
    assert done.completion_tokens >= 1 and done.text
    for be in (fp32, half):
        asyncio.run(be.aclose())
