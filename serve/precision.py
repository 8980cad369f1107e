"""Which arithmetic the transformers backend runs on CPU: bf16 where the CPU has it natively, float32 else.

Two choices, resolved once when the backend starts: the prefill's matmuls (bf16 autocast or float32) and
the linear layers' stored weights (bf16 or float32; bf16 weights make every product bf16, prefill and
decode). Norms, attention, the residual stream and the KV cache stay float32 in both.
"""

from __future__ import annotations

from ragtune.hardware import cpu_native_bf16

PREFILL_PRECISIONS = ("auto", "float32", "bf16-autocast")


def prefill_autocast(precision: str, on_gpu: bool, cpuinfo: str | None = None) -> bool:
    """Whether prompts are prefilled under bf16 autocast (bf16 matmuls; the KV cache is kept fp32).

    Prefill is compute-bound, and on a CPU with native bf16 autocast halves it: bench/prefill_precision.py,
    96 SQuAD RAG prompts on the default model, prefill time 0.47x fp32 with 91/96 identical greedy answers
    and F1 +0.0 [-0.3, +0.4]; so "auto" takes it there and fp32 elsewhere (emulated bf16 is slower). With
    fp32 weights, autocast re-casts them at every forward: a memory-bound decode step would lose by it,
    which is what bf16 weights (`resolve_weight_precision`) avoid. A GPU backend runs bf16 weights anyway."""
    if precision not in PREFILL_PRECISIONS:
        raise ValueError(
            f"prefill precision must be one of {', '.join(PREFILL_PRECISIONS)}, got {precision!r}"
        )
    if on_gpu or precision == "float32":
        return False
    return precision == "bf16-autocast" or cpu_native_bf16(cpuinfo)


WEIGHT_PRECISIONS = ("auto", "float32", "bf16")


def resolve_weight_precision(
    precision: str, prefill_precision: str = "auto", on_gpu: bool = False, cpuinfo: str | None = None
) -> str:
    """The linear layers' weights on CPU: "bf16" (half the bytes a decode step reads) or "float32".

    Decode at batch 1 is bound by reading the weights, and oneDNN's bf16 products read half as much:
    bench/engines.py, the default model on 2 cores, decode 43.6 tok/s with bf16 weights against 28.6 in
    fp32 and the same greedy tokens on its 8 RAG prompts; with 8 rows a step costs about what one row's
    does (bf16 weights in [out, in] order; fp32's GEMM at 8 rows costs 1.8x its GEMV). "auto" takes bf16
    on a CPU with native bf16 unless the prefill is asked to be float32 (fp32 reference runs), float32
    elsewhere. A GPU backend loads bf16 weights anyway: this returns "float32" there (nothing to swap)."""
    if precision not in WEIGHT_PRECISIONS:
        raise ValueError(f"weight precision must be one of {', '.join(WEIGHT_PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and prefill_precision == "float32":
        raise ValueError(
            "a float32 prefill needs float32 weights: pass --weight-precision float32 (or auto) with "
            "--prefill-precision float32"
        )
    if on_gpu:
        return "float32"
    if precision == "auto":
        native = cpu_native_bf16(cpuinfo)
        return "bf16" if native and prefill_precision != "float32" else "float32"
    return precision
