"""Prefix reuse in the llama.cpp backend: time to first token of each turn of a chat, with and without it.

    .venv/bin/python bench/llamacpp_reuse.py [--model default] [--turns 4] [--max-tokens 24] [--gguf-type f16]

A chat whose first message carries three SciFact abstracts (a RAG-sized prompt), then --turns - 1 short
follow-ups, each resending the whole history as chat clients do; greedy. Run once with the backend reusing
its slots' KV cells (the server's default) and once prefilling every prompt whole (`--prefix-cache-mb 0`), in
one process, one after the other (turn 1 has nothing to reuse: it is the same work in both). Prints per turn: prompt tokens, TTFT with and without reuse, and their
ratio; and whether the answers are the same.
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
SCIFACT = REPO.parent / "shared" / "data" / "beir_scifact" / "corpus.jsonl"
FOLLOW_UPS = [
    "Which of these studies is the largest?",
    "Summarise its finding in one line.",
    "Why?",
    "Thanks.",
]


def first_message() -> str:
    with open(SCIFACT, encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(3), f)]
    context = "\n\n".join(
        f"[{i + 1}] {d['title']}: {' '.join(d['text'].split()[:110])}" for i, d in enumerate(docs)
    )
    return f"Answer from these passages.\n\n{context}\n\nQuestion: What do these studies measure?"


def chat(backend, turns: int, max_tokens: int) -> list[tuple[int, float, str]]:
    """(prompt tokens, TTFT s, answer) per turn."""
    from serve.decoding import Job
    from serve.types import SamplingOptions

    history = [{"role": "user", "content": first_message()}]
    out = []
    for t in range(turns):
        ids = backend.prepare(history).prompt_ids
        stamps, texts = [], []
        job = Job(
            list(ids),
            SamplingOptions(max_tokens=max_tokens, seed=0),
            lambda d, stamps=stamps, texts=texts: (stamps.append(time.perf_counter()), texts.append(d.text)),
        )
        t0 = time.perf_counter()
        backend.run_batch([job])
        answer = "".join(x for x in texts if x)
        out.append((len(ids), stamps[0] - t0, answer))
        history += [{"role": "assistant", "content": answer}, {"role": "user", "content": FOLLOW_UPS[t % 4]}]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--gguf-type", default=None)
    args = ap.parse_args()
    from serve.llamacpp_backend import LlamaCppBackend

    runs = {}
    for name, reuse in (("reuse", True), ("whole", False)):
        be = LlamaCppBackend(args.model, gguf_type=args.gguf_type, max_batch_size=4, reuse_prefixes=reuse)
        runs[name] = chat(be, args.turns, args.max_tokens)
        be.engine.close()
    print("turn | prompt tokens | TTFT reuse ms | TTFT whole ms | whole ÷ reuse")
    for t, (r, w) in enumerate(zip(runs["reuse"], runs["whole"]), 1):
        print(f"{t:>4} | {r[0]:>13} | {r[1] * 1e3:13.0f} | {w[1] * 1e3:13.0f} | {w[1] / r[1]:13.2f}")
    same = [r[2] == w[2] for r, w in zip(runs["reuse"], runs["whole"])]
    print(f"same answers: {sum(same)} of {len(same)}")


if __name__ == "__main__":
    main()
