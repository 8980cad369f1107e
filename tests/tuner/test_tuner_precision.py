"""CPU mixed precision: bf16 autocast only for dtype bf16-autocast, and only where the CPU computes bf16 in
hardware; elsewhere that choice is a clear error."""

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


@pytest.mark.parametrize(
    ("dtype", "expected"), [("auto", False), ("float32", False), ("bf16-autocast", True)]
)
def test_autocast_only_when_asked_for(dtype, expected):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU, bf16-autocast trains in bf16 weights instead")
    assert cpu_autocast(dtype) is expected


def test_bf16_autocast_on_a_cpu_without_native_bf16_is_a_clear_error(monkeypatch):
    import torch

    from ragtune.errors import RagtuneError
    from tuner import methods

    if torch.cuda.is_available():
        pytest.skip("needs a CPU-only run")
    monkeypatch.setattr(methods, "cpu_native_bf16", lambda cpuinfo=None: False)
    with pytest.raises(RagtuneError, match="needs a CPU with native bf16"):
        methods.choose_dtype("bf16-autocast", "lora")
    monkeypatch.setattr(methods, "cpu_native_bf16", lambda cpuinfo=None: True)
    assert methods.choose_dtype("bf16-autocast", "lora") == torch.float32  # fp32 master weights


def test_training_arguments_turn_autocast_on_exactly_when_chosen(tmp_path):
    import torch

    from tuner import LoraGeneratorConfig
    from tuner.runtime import training_arguments

    for dtype in ("auto", "float32", "bf16-autocast"):
        cfg = LoraGeneratorConfig(
            base=str(tmp_path), data=str(tmp_path / "d.jsonl"), out_dir=str(tmp_path / "o"), dtype=dtype
        )
        args = training_arguments(cfg, tmp_path / "run", torch.float32, has_val=False)
        assert args.bf16 is cpu_autocast(dtype)
