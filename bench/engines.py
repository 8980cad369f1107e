"""CPU generation engines side by side on the default generator, on the same RAG-shaped prompts (issue 10).

    .venv/bin/python bench/engines.py [--prompts 8] [--rounds 2] [--new-tokens 48] [--threads 2]
                                      [--engines hf-generate,serve-hf,...] [--work DIR]

Prompts: the RAG prompt ragtune serves (ragtune/prompt.py's system prompt and passage delimiters, the model's
chat template through `render_prompt`), three BEIR SciFact abstracts cut to 125 words each and a SciFact claim
as the question: ~700 tokens. For every engine, at batch 1, greedy, --new-tokens new tokens (EOS suppressed
so that every engine decodes the same number of tokens):
  - TTFT: the time to the first new token (prefill + one sample);
  - decode tokens/s: (new tokens - 1) ÷ the time from the first to the last token;
  - decode ÷ ceiling: decode tokens/s × the time to read the fp32 weights once (a sum over every parameter,
    the memory-bound limit of an fp32 decode step; goal ≥ 1.0);
  - agreement with fp32 greedy (hf-generate): mean common prefix and share of identical tokens.
Each figure is the best of --rounds rounds per prompt (engines interleaved inside every round, so a busy
machine slows all alike), then the median over prompts. Engines that cannot be built or loaded are
listed with the reason. The machine is shared: quote ratios measured in one run, never the absolute speeds.

Engines: hf-generate (transformers `generate`, fp32: the baseline), serve-hf (the serve backend,
serve/hf_backend.py, fp32, with its CPU decode path: serve/kv_cache.py, serve/cpu_linear.py), serve-hf-plain
(the same backend on transformers' own cache, attention and linears: the backend before that path),
serve-hf-bf16-prefill (serve-hf with `--prefill-precision bf16-autocast`), serve-hf-bf16 (bf16 linear
weights, `--weight-precision bf16`: the default on a CPU with native bf16), torch-bf16 and torch-int8 (bf16 weights; `quantize_dynamic` int8 Linear; a
plain KV-cache loop), hf-cb (transformers' continuous batching: a persistent manager, streamed, attn "paged|sdpa"),
ct2-float32 / ct2-int8 / ct2-int8_bfloat16 (CTranslate2, converted from the HF folder), ort-int4 /
ort-int8 / ort-fp32 (onnxruntime-genai, built with its model builder), serve-ct2 (serve/ct2_backend.py,
when present), llamacpp-q4_1 (llama-cpp-python's own `Llama.generate` on the default generator's own Q4_1
GGUF, when it is installed: it compiles llama.cpp, see docs/llamacpp.md), llamacpp-q8_0 / llamacpp-f16 (the
same on `ragtune export --gguf` conversions of the fp32 folder), serve-llamacpp-q4_1 / serve-llamacpp-q8_0 /
serve-llamacpp-f16 (ragtune's llama.cpp backend, serve/llamacpp_backend.py, on those files).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SCIFACT = REPO.parent / "shared" / "data" / "beir_scifact"

from bench.engine_runs import (
    CLOSERS,
    Run,
    _ct2,
    _gguf,
    _paged,
    _serve_ct2,
    _serve_hf,
    _serve_llamacpp,
    hf_cb,
    hf_generate,
    llamacpp_run,
    ort_build,
    ort_run,
    torch_loop,
)

ALL_ENGINES = (
    "hf-generate",
    "serve-hf-plain",
    "serve-hf",
    "serve-hf-bf16-prefill",
    "torch-bf16",
    "torch-int8",
    "hf-cb",
    "ct2-float32",
    "ct2-int8",
    "ct2-int8_bfloat16",
    "ort-int4",
    "ort-int8",
    "ort-fp32",
    "serve-ct2",
    "llamacpp-q4_1",
    "serve-hf-bf16",
    "llamacpp-q8_0",
    "llamacpp-f16",
    "serve-llamacpp-q4_1",
    "serve-llamacpp-q8_0",
    "serve-llamacpp-f16",
)
BASELINE = "hf-generate"


def note(msg: str) -> None:
    print("  " + msg, file=sys.stderr, flush=True)


# --- prompts ------------------------------------------------------------------------------------------
def rag_prompts(tokenizer, n: int, words: int = 125) -> list[list[int]]:
    """n RAG prompts as served: 3 SciFact abstracts (cut to `words` words) + a SciFact claim as question."""
    from ragtune.prompt import build_messages, control_token_strings, render_prompt

    docs = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            if len(obj["text"].split()) >= words:
                docs.append({"title": obj.get("title", ""), "text": " ".join(obj["text"].split()[:words])})
            if len(docs) >= 3 * n:
                break
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        claims = [json.loads(line)["text"] for _, line in zip(range(n), f)]
    specials = control_token_strings(tokenizer)
    out = []
    for i, claim in enumerate(claims):
        msgs = build_messages(f"Is it true that {claim.rstrip('.')}?", docs[3 * i : 3 * i + 3])
        out.append(render_prompt(tokenizer, msgs, specials)[1])
    return out


def weight_read_s(model) -> Callable[[], float]:
    """Seconds to read every fp32 parameter once (tied weights once): a sum over each."""
    import torch

    params = list(model.parameters())

    def once():
        t = time.perf_counter()
        with torch.inference_mode():
            s = 0.0
            for p in params:
                s += float(p.sum())
        return time.perf_counter() - t

    return once


# --- building the candidates -----------------------------------------------------------------------------
class Candidates:
    def __init__(self, model_dir: Path, work: Path, threads: int, wanted: list[str]):
        self.model_dir, self.work, self.threads = model_dir, work, threads
        self.runs: dict[str, Run] = {}
        self.failed: dict[str, str] = {}
        self.wanted = wanted

    def add(self, name: str, build: Callable[[], Run]) -> None:
        if name not in self.wanted:
            return
        t = time.perf_counter()
        try:
            self.runs[name] = build()
            note(f"{name}: ready in {time.perf_counter() - t:.1f} s")
        except Exception as e:  # noqa: BLE001 - a candidate that cannot be built is reported, not fatal
            self.failed[name] = (
                f"{type(e).__name__}: {str(e).strip().splitlines()[0][:240] if str(e).strip() else ''}"
            )
            note(f"{name}: FAILED {self.failed[name]}")


def build_all(model_dir: Path, work: Path, threads: int, wanted: list[str]):
    import torch

    from ragtune.models import gguf_path
    from serve.hf_backend import TransformersBackend

    def backend(**settings):  # the serve backend at batch 1; rounds repeat prompts, so no prefix reuse
        return TransformersBackend(model_dir, device="cpu", max_batch_size=1, prefix_cache_mb=0, **settings)

    plain = backend(cpu_kernels=False, prefill_precision="float32")
    model, tok = plain.model, plain.tokenizer  # transformers' own model: the baseline and the torch loops
    eos = sorted(plain.eos_ids)
    c = Candidates(model_dir, work, threads, wanted)
    c.add("hf-generate", lambda: hf_generate(model))
    c.add("serve-hf-plain", lambda: _serve_hf(plain, eos))
    c.add("serve-hf", lambda: _serve_hf(backend(prefill_precision="float32"), eos))
    c.add(
        "serve-hf-bf16-prefill",
        lambda: _serve_hf(backend(prefill_precision="bf16-autocast", weight_precision="float32"), eos),
    )
    c.add("serve-hf-bf16", lambda: _serve_hf(backend(weight_precision="bf16"), eos))
    c.add("torch-bf16", lambda: torch_loop(copy.deepcopy(model).to(torch.bfloat16), eos))
    c.add(
        "torch-int8",
        lambda: torch_loop(
            torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
            ),
            eos,
        ),
    )
    c.add("hf-cb", lambda: hf_cb(_paged(model_dir)))
    for q in ("float32", "int8", "int8_bfloat16"):
        c.add(f"ct2-{q}", lambda q=q: _ct2(model_dir, work, q, threads, tok))
    for p in ("int4", "int8", "fp32"):
        c.add(f"ort-{p}", lambda p=p: ort_run(ort_build(model_dir, work / f"ort-{p}", p), threads))
    c.add("serve-ct2", lambda: _serve_ct2(model_dir, eos))
    c.add("llamacpp-q4_1", lambda: llamacpp_run(gguf_path(), threads, eos))
    ggufs = {"q4_1": lambda: gguf_path()}
    for q in ("q8_0", "f16"):
        ggufs[q] = lambda q=q: _gguf(model_dir, work, q)
        c.add(f"llamacpp-{q}", lambda q=q: llamacpp_run(ggufs[q](), threads, eos))
    for q, path in ggufs.items():
        c.add(f"serve-llamacpp-{q}", lambda path=path: _serve_llamacpp(path(), model_dir, threads, eos))
    return c, model, tok


# --- measuring ----------------------------------------------------------------------------------------
def measure(
    c: Candidates,
    prompts: list[list[int]],
    rounds: int,
    n_new: int,
    read_once,
    on_round: Callable[[dict], None] = lambda res: None,
) -> dict:
    """Every engine on every prompt, interleaved, `rounds` times; `on_round` sees the figures so far."""
    names = list(c.runs)
    best: dict[str, list[list[float]]] = {n: [[float("inf"), 0.0] for _ in prompts] for n in names}
    tokens: dict[str, list[list[int]]] = {n: [[] for _ in prompts] for n in names}
    reads = []
    for name in list(names):  # first calls pay one-time costs (allocation, kernel choice): not measured
        try:
            c.runs[name](prompts[0], 2)
        except Exception as e:  # noqa: BLE001 - an engine that fails is reported, the others go on
            c.failed[name] = f"{type(e).__name__}: {e}"[:240]
            note(f"{name}: FAILED at run time {c.failed[name]}")
            names.remove(name)
    for r in range(rounds):
        reads.append(min(read_once() for _ in range(5)))
        for i, ids in enumerate(prompts):
            for name in names if (r + i) % 2 == 0 else names[::-1]:
                try:
                    ttft, dec, toks = c.runs[name](ids, n_new)
                except Exception as e:  # noqa: BLE001 - an engine that fails is reported, the others go on
                    c.failed[name] = f"{type(e).__name__}: {e}"[:240]
                    note(f"{name}: FAILED at run time {c.failed[name]}")
                    names = [n for n in names if n != name]
                    continue
                b = best[name][i]
                b[0] = min(b[0], ttft)
                b[1] = max(b[1], (n_new - 1) / dec)
                tokens[name][i] = toks
        note(f"round {r + 1}/{rounds} done; weight read {min(reads) * 1e3:.1f} ms")
        res = {
            "best": {n: best[n] for n in names},
            "tokens": {n: tokens[n] for n in names},
            "read_s": min(reads),
        }
        if r + 1 < rounds:
            on_round(res)
    return res


def agreement(ref: list[int], got: list[int]) -> tuple[int, float]:
    prefix = 0
    for a, b in zip(ref, got):
        if a != b:
            break
        prefix += 1
    same = sum(a == b for a, b in zip(ref, got)) / max(1, len(ref))
    return prefix, same


def report(res: dict, failed: dict[str, str], prompt_lens: list[int], n_new: int, file=sys.stdout) -> None:
    lines: list[str] = []
    out = lines.append  # the table is written at once, to `file`
    read_s = res["read_s"]
    base = res["best"].get(BASELINE)
    out(
        f"\nprompts: {len(prompt_lens)}, {min(prompt_lens)}-{max(prompt_lens)} tokens "
        f"(median {statistics.median(prompt_lens):.0f}); {n_new} new tokens, greedy, batch 1"
    )
    out(f"weight read (fp32, once): {read_s * 1e3:.1f} ms → ceiling {1 / read_s:.1f} tok/s\n")
    out(
        "| engine | TTFT ms | TTFT ÷ base | decode tok/s | decode ÷ base | decode ÷ ceiling | prefix / "
        f"{n_new} | same tokens |"
    )
    out("|---|---|---|---|---|---|---|---|")
    ref = res["tokens"].get(BASELINE)
    for name, rows in res["best"].items():
        ttft = statistics.median(r[0] for r in rows)
        dec = statistics.median(r[1] for r in rows)
        if base:
            t_ratio = statistics.median(r[0] / b[0] for r, b in zip(rows, base))
            d_ratio = statistics.median(r[1] / b[1] for r, b in zip(rows, base))
        else:
            t_ratio = d_ratio = float("nan")
        if ref:
            agr = [agreement(a, b) for a, b in zip(ref, res["tokens"][name])]
            pre = statistics.mean(a[0] for a in agr)
            same = statistics.mean(a[1] for a in agr)
            agr_s = f"{pre:.1f} | {same:.0%}"
        else:
            agr_s = "- | -"
        out(
            f"| {name} | {ttft * 1e3:.0f} | {t_ratio:.2f} | {dec:.1f} | {d_ratio:.2f} | {dec * read_s:.2f} "
            f"| {agr_s} |"
        )
    for name, why in failed.items():
        out(f"| {name} | failed: {why} | | | | | | |")
    print("\n".join(lines), file=file, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default=",".join(ALL_ENGINES))
    ap.add_argument(
        "--work",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "ragtune-bench-engines",
        help="converted models are kept here and reused",
    )
    args = ap.parse_args()
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(wanted) - set(ALL_ENGINES))
    if unknown:
        ap.error(f"unknown engines {unknown}; choose from {', '.join(ALL_ENGINES)}")
    if BASELINE not in wanted:
        wanted.insert(0, BASELINE)
    logging.basicConfig(level=logging.WARNING)
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    from ragtune.models import resolve_generator

    model_dir = resolve_generator("default")
    args.work.mkdir(parents=True, exist_ok=True)
    note(f"model {model_dir}; {args.threads} threads; work dir {args.work}")
    c, model, tok = build_all(model_dir, args.work, args.threads, wanted)
    prompts = rag_prompts(tok, args.prompts)
    lens = [len(p) for p in prompts]
    res = measure(
        c,
        prompts,
        args.rounds,
        args.new_tokens,
        weight_read_s(model),
        on_round=lambda r: report(r, c.failed, lens, args.new_tokens, file=sys.stderr),
    )
    report(res, c.failed, lens, args.new_tokens)
    for close in CLOSERS:
        close()


if __name__ == "__main__":
    main()
