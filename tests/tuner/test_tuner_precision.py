"""CPU mixed precision: bf16 autocast for dtype bf16-autocast, and for auto with LoRA where the CPU computes bf16
in hardware (fp32 elsewhere; a GPU trains in bf16); bf16-autocast on a CPU without native bf16 is a clear error."""

from __future__ import annotations

import pytest

from ragtune.hardware import cpu_native_bf16
from tuner.methods import cpu_autocast

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


@pytest.mark.parametrize("native", [True, False])
def test_ragtune_cpuinfo_names_the_file_read(native, tmp_path, monkeypatch):
    """bench/as_avx2.sh measures another machine kind's choices through RAGTUNE_CPUINFO."""
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {AVX512}{' avx512_bf16' if native else ''}\n")
    monkeypatch.setenv("RAGTUNE_CPUINFO", str(info))
    assert cpu_native_bf16() is native


def test_as_avx2_drops_the_avx512_and_amx_flags():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "as_avx2.sh"
    code = (
        "import os; from ragtune.hardware import cpu_native_bf16; "
        "print(cpu_native_bf16(), os.environ['ATEN_CPU_CAPABILITY'], os.environ['RAGTUNE_CPUINFO'])"
    )
    out = subprocess.run(
        [str(script), sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    native, isa, path = out.stdout.split()
    assert (native, isa) == ("False", "avx2")
    flags = Path(path).read_text()
    Path(path).unlink()
    assert "avx512" not in flags and "amx" not in flags


BF16_CPU = f"processor\t: 0\nflags\t\t: {AVX512} avx512_bf16\n"
AMX_CPU = f"processor\t: 0\nflags\t\t: {AVX512} amx_bf16 amx_tile\n"
PLAIN_CPU = f"processor\t: 0\nflags\t\t: {AVX512}\n"


@pytest.mark.parametrize(
    ("name", "method", "cuda", "cuda_bf16", "cpuinfo", "expected"),
    [
        ("auto", "lora", False, None, BF16_CPU, "bf16-autocast"),  # native bf16 CPU: autocast
        ("auto", "lora", False, None, AMX_CPU, "bf16-autocast"),
        ("auto", "dora", False, None, BF16_CPU, "bf16-autocast"),
        ("auto", "lora", False, None, PLAIN_CPU, "float32"),  # no native bf16: fp32
        ("auto", "lora", False, None, "", "float32"),
        ("auto", "prefix", False, None, BF16_CPU, "float32"),  # measured for LoRA only
        ("auto", "full", False, None, AMX_CPU, "float32"),
        ("auto", "lora", True, True, PLAIN_CPU, "bfloat16"),  # a GPU with bf16: unchanged
        ("auto", "lora", True, True, BF16_CPU, "bfloat16"),
        ("auto", "lora", True, False, BF16_CPU, "float32"),  # a GPU without bf16
        ("float32", "lora", False, None, BF16_CPU, "float32"),  # an explicit choice is kept
        ("bf16-autocast", "lora", False, None, PLAIN_CPU, "bf16-autocast"),  # (choose_dtype refuses it)
    ],
)
def test_what_auto_trains_in(name, method, cuda, cuda_bf16, cpuinfo, expected):
    from tuner.methods import resolve_dtype

    assert resolve_dtype(name, method, cuda=cuda, cuda_bf16=cuda_bf16, cpuinfo=cpuinfo) == expected


@pytest.mark.parametrize(
    ("name", "method", "cuda", "cpuinfo", "expected"),
    [
        ("auto", "lora", False, BF16_CPU, True),
        ("auto", "lora", False, PLAIN_CPU, False),
        ("auto", "prefix", False, BF16_CPU, False),
        ("auto", "lora", True, BF16_CPU, False),  # a GPU trains in bf16 weights instead
        ("float32", "lora", False, BF16_CPU, False),
        ("bf16-autocast", "lora", False, BF16_CPU, True),
        ("bf16-autocast", "prefix", False, BF16_CPU, True),
        ("bf16-autocast", "lora", True, BF16_CPU, False),
    ],
)
def test_autocast_exactly_where_chosen(name, method, cuda, cpuinfo, expected):
    assert cpu_autocast(name, method, cuda=cuda, cpuinfo=cpuinfo) is expected


@pytest.mark.parametrize(
    ("name", "cuda", "cuda_bf16", "cpuinfo", "expected"),
    [
        ("auto", False, None, BF16_CPU, "float32"),  # autocast keeps fp32 master weights
        ("auto", False, None, PLAIN_CPU, "float32"),
        ("auto", True, True, PLAIN_CPU, "bfloat16"),
        ("bf16-autocast", False, None, AMX_CPU, "float32"),
        ("bf16-autocast", True, True, PLAIN_CPU, "bfloat16"),  # a GPU simply trains in bf16
        ("float32", False, None, BF16_CPU, "float32"),
    ],
)
def test_weights_load_in(name, cuda, cuda_bf16, cpuinfo, expected):
    import torch

    from tuner.methods import choose_dtype

    got = choose_dtype(name, "lora", cuda=cuda, cuda_bf16=cuda_bf16, cpuinfo=cpuinfo)
    assert got == getattr(torch, expected)


@pytest.mark.parametrize("name", ["bf16-autocast", "bfloat16"])
def test_bf16_on_a_cpu_without_native_bf16_is_a_clear_error(name):
    from ragtune.errors import RagtuneError
    from tuner.methods import choose_dtype

    with pytest.raises(RagtuneError, match="needs a CPU with native bf16|needs a GPU here"):
        choose_dtype(name, "lora", cuda=False, cpuinfo=PLAIN_CPU)


def test_training_arguments_turn_autocast_on_exactly_when_chosen(tmp_path):
    import torch

    from tuner import LoraGeneratorConfig
    from tuner.runtime import training_arguments

    for dtype in ("auto", "float32", "bf16-autocast"):
        cfg = LoraGeneratorConfig(
            base=str(tmp_path), data=str(tmp_path / "d.jsonl"), out_dir=str(tmp_path / "o"), dtype=dtype
        )
        args = training_arguments(cfg, tmp_path / "run", torch.float32, has_val=False)
        assert args.bf16 is cpu_autocast(dtype, cfg.method)
