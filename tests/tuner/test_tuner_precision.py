"""CPU mixed precision: bf16 autocast only where the CPU computes bf16 in hardware, and only for dtype auto."""

from __future__ import annotations

import pytest

from tuner.methods import cpu_autocast, cpu_native_bf16

AVX512 = "fpu sse2 avx2 avx512f avx512bw avx512vl"


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        (f"processor\t: 0\nflags\t\t: {AVX512} avx512_bf16\n", True),  # AMD Zen 4, Intel Cooper Lake
        (f"processor\t: 0\nflags\t\t: {AVX512} amx_bf16 amx_tile\n", True),  # Intel Sapphire Rapids
        (f"processor\t: 0\nflags\t\t: {AVX512}\n", False),  # AVX-512 without bf16: software bf16
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2\n", False),
        ("processor\t: 0\nFeatures\t: fp asimd bf16\n", False),  # aarch64 names it differently: not claimed
        ("", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert cpu_native_bf16(cpuinfo) is native


@pytest.mark.parametrize(("dtype", "expected"), [("auto", None), ("float32", False), ("bfloat16", False)])
def test_autocast_only_for_dtype_auto_on_a_native_bf16_cpu(dtype, expected):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU, dtype auto picks bf16 weights instead")
    want = cpu_native_bf16() if expected is None else expected
    assert cpu_autocast(dtype) is want


def test_training_arguments_turn_autocast_on_exactly_when_chosen(tmp_path):
    import torch

    from tuner import LoraGeneratorConfig
    from tuner.runtime import training_arguments

    for dtype in ("auto", "float32"):
        cfg = LoraGeneratorConfig(
            base=str(tmp_path), data=str(tmp_path / "d.jsonl"), out_dir=str(tmp_path / "o"), dtype=dtype
        )
        args = training_arguments(cfg, tmp_path / "run", torch.float32, has_val=False)
        assert args.bf16 is cpu_autocast(dtype)
