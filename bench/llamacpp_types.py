"""Prefill and decode speed of llama.cpp per GGUF type, on the engine ragtune's backend drives (issue 23).

    .venv/bin/python bench/llamacpp_types.py [--model DIR] [--types f32,f16,q8_0,q4_0] [--tokens 740]

For the default model's shipped Q4_1 file and `ragtune export --gguf TYPE` conversions of --model (default:
the default model's folder), through `serve/llamacpp_engine.py` alone (no server, no sampling): a --tokens
prompt prefilled in chunks of --chunk tokens, then 16 decode steps of that one sequence, then 16 steps of 8
sequences decoding together. Best of 2 rounds. Prints one JSON line per type: prefill tokens/s, decode ms per
token, and the 8-sequence step in ms and tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure(gguf: Path, ids: list[int], chunk: int, threads: int) -> dict:
    from serve.llamacpp_engine import LlamaEngine, Token

    e = LlamaEngine(gguf, n_seq=8, ctx_per_seq=2048, n_batch=chunk + 8, threads=threads)
    best = {"prefill": float("inf"), "decode": float("inf"), "decode8": float("inf")}
    n = len(ids)
    for _ in range(2):
        for s in range(8):
            e.forget(s)
        t = time.perf_counter()
        for s in range(0, n, chunk):
            e.decode([Token(x, s + j, 0, s + j == n - 1) for j, x in enumerate(ids[s : s + chunk])])
        best["prefill"] = min(best["prefill"], time.perf_counter() - t)
        t = time.perf_counter()
        for k in range(16):
            e.decode([Token(5, n + k, 0, True)])
        best["decode"] = min(best["decode"], (time.perf_counter() - t) / 16)
        for s in range(1, 8):  # seven more sequences with short prompts, then all eight decode together
            e.decode([Token(x, j, s, j == 63) for j, x in enumerate(ids[:64])])
        t = time.perf_counter()
        for k in range(16):
            e.decode([Token(5, (n + 16 if s == 0 else 64) + k, s, True) for s in range(8)])
        best["decode8"] = min(best["decode8"], (time.perf_counter() - t) / 16)
    e.close()
    return {
        "prefill_tok_s": round(n / best["prefill"]),
        "decode_ms": round(best["decode"] * 1e3, 1),
        "decode8_step_ms": round(best["decode8"] * 1e3, 1),
        "decode8_tok_s": round(8 / best["decode8"], 1),
    }


def main() -> None:
    from ragtune.gguf_files import write_gguf
    from ragtune.models import default_generator_dir, gguf_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a Llama model folder (default: the default model's)")
    ap.add_argument("--types", default="f32,f16,q8_0,q4_0")
    ap.add_argument("--tokens", type=int, default=740)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--work", default="bench-out/llamacpp-types")
    args = ap.parse_args()
    model = Path(args.model) if args.model else default_generator_dir()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ids = [100 + (i * 7919) % 40000 for i in range(args.tokens)]  # a fixed spread of ordinary token ids
    files = {"q4_1 (shipped)": gguf_path()} if not args.model else {}
    for t in args.types.split(","):
        out = work / f"{model.name}-{t}.gguf"
        files[t] = out if out.is_file() else write_gguf(model, out, t)
    for t, f in files.items():
        print(
            json.dumps({"type": t, "chunk": args.chunk, **measure(f, ids, args.chunk, args.threads)}),
            flush=True,
        )


if __name__ == "__main__":
    main()
