"""What this CPU computes natively, read from /proc/cpuinfo (never assumed): shared by tuner and serve.

`RAGTUNE_CPUINFO=FILE` reads FILE instead: bench/as_avx2.sh measures, on a CPU with AVX-512, the choices
ragtune makes on the AVX2-only machine kind (a cpuinfo without the avx512/amx flags)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX), read from /proc/cpuinfo's flags.

    torch runs bf16 on any AVX-512 CPU, but without these instructions it converts in software and is slower
    than fp32, so autocast pays only where they exist (bench/lora_default.py measures it)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path(os.environ.get("RAGTUNE_CPUINFO") or "/proc/cpuinfo").read_text(
                encoding="utf-8", errors="replace"
            )
        except OSError:
            return False
    lines = (line.split(":", 1) for line in cpuinfo.splitlines())
    flags = next((set(v.split()) for k, *rest in lines for v in rest if k.strip() == "flags"), set())
    return bool(flags & {"avx512_bf16", "amx_bf16"})
