"""Benchmark of `ragtune serve` on loopback, with vLLM benchmark_serving's definitions.

    .venv/bin/python bench/serve.py [--model DIR --index DIR] [--requests-per-client 4] [--max-tokens 32]

Without --model/--index it builds a tiny model (untrained Llama, hidden 128, 4 layers; its output layer is
untied so that it emits text) and an index of the first --docs abstracts of BEIR SciFact. Then, against
`ragtune serve` (a subprocess, transformers backend), streaming, every request asking for --max-tokens:
  1. per concurrency 1, 4, 8, 16: TTFT (request sent → first content chunk), TPOT ((e2e − TTFT) ÷ (output
     tokens − 1)), end-to-end latency, each p50/p99, and throughput (completed requests/s, output tokens/s);
  2. gateway overhead at 8 clients: mean e2e of the full gateway (HTTP + retrieval + prompt) ÷ mean e2e
     of the backend alone (the same prompts, already built, streamed from a TransformersBackend in this
     process) — goal ≤ 1.05; and ÷ the same server with the prompts prebuilt (`raw_prompt`), which
     isolates retrieval and prompt building from HTTP; --rounds interleaved rounds, median ratio;
  3. batching gain: output-token throughput at 8 clients ÷ at 1 (goal ≥ 3 on the tiny model), and the
     1-client decode speed (1 ÷ TPOT p50) ÷ the fp32 weight-read ceiling (1 ÷ the time to read the
     model's parameters once as fp32, measured here: the memory-bound limit of an fp32 decode step);
  4. two index swaps (re-ingests of a changed document) under 8 streaming clients: failed requests (goal 0);
     with --soak S: --soak-clients clients for at least S seconds instead, their requests rotating over the
     base model and every --lora adapter, e2e p50/p95 and the answers completed;
  5. with --backend llama.cpp and --llamacpp-baseline: llama-cpp-python's own single-stream
     `create_completion` on the same GGUF and the same rendered RAG prompts (TTFT, decode tokens/s), and the
     server's 1-client decode ÷ it (goal ≥ 1: the server adds nothing).
Bounded: --requests-per-client requests per client per level and a --time-limit per level. The machine is
shared: re-run before quoting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SCIFACT = REPO.parent / "shared" / "data" / "beir_scifact"
QUESTIONS = [
    "What causes inflammation in the lungs?",
    "How does insulin resistance develop?",
    "Which genes are linked to breast cancer?",
    "Does vitamin D reduce fracture risk?",
    "How do T cells recognise antigens?",
    "What is the effect of statins on mortality?",
    "How does the gut microbiome affect obesity?",
    "What drives tumour metastasis?",
]


def build_model(out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from tuner.base_model import TinyModelConfig, build_untrained

    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:300]
    build_untrained(texts, out, TinyModelConfig(max_position_embeddings=2048), seed=0)
    model = AutoModelForCausalLM.from_pretrained(str(out))
    model.config.tie_word_embeddings = False
    gen = torch.Generator().manual_seed(1)
    model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=gen) * 0.5)
    model.save_pretrained(out)
    return out


def build_index(root: Path, docs: int) -> tuple[Path, Path]:
    from ingest import ingest

    rows = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            rows.append({"id": obj["_id"], "title": obj.get("title", ""), "text": obj["text"]})
            if len(rows) == docs:
                break
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest([src], root / "index", show_progress=False)
    return root / "index", src


async def stream_one(client, url: str, body: dict) -> dict:
    """One streamed request: TTFT, e2e, output tokens (from usage), or the error."""
    t0 = time.perf_counter()
    ttft, tokens, version = None, 0, None
    try:
        async with client.stream("POST", url, json=body, timeout=300) as r:
            if r.status_code != 200:
                return {"ok": False, "error": f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"}
            done = False
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    return {"ok": False, "error": chunk["error"]["message"]}
                version = chunk.get("index_version", version)
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
                for c in chunk.get("choices", []):
                    if c["delta"].get("content") and ttft is None:
                        ttft = time.perf_counter() - t0
            if not done:
                return {"ok": False, "error": "stream ended without [DONE]"}
    except Exception as e:  # noqa: BLE001 - a benchmark counts every failure, whatever it is
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    e2e = time.perf_counter() - t0
    return {
        "ok": True,
        "ttft": ttft if ttft is not None else e2e,
        "e2e": e2e,
        "tokens": tokens,
        "version": version,
    }


async def run_level(
    url: str,
    bodies: list[dict],
    clients: int,
    per_client: int,
    time_limit: float,
    stop: asyncio.Event | None = None,
) -> dict:
    import httpx

    results: list[dict] = []
    deadline = time.perf_counter() + time_limit

    async def client_loop(i: int, client) -> None:
        n = 0
        while (stop is None and n < per_client and time.perf_counter() < deadline) or (
            stop is not None and not stop.is_set()
        ):
            results.append(await stream_one(client, url, bodies[(i + n * clients) % len(bodies)]))
            n += 1

    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(limits=limits, timeout=300) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
        wall = time.perf_counter() - t0
    return summarize(results, wall, clients)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


def summarize(results: list[dict], wall: float, clients: int) -> dict:
    ok = [r for r in results if r["ok"]]
    tpot = [(r["e2e"] - r["ttft"]) / (r["tokens"] - 1) for r in ok if r["tokens"] > 1]
    out = {
        "clients": clients,
        "requests": len(results),
        "failed": len(results) - len(ok),
        "wall_s": wall,
        "req_per_s": len(ok) / wall,
        "out_tok_per_s": sum(r["tokens"] for r in ok) / wall,
        "errors": sorted({r["error"] for r in results if not r["ok"]})[:5],
        "versions": sorted({r.get("version") for r in ok if r.get("version")}),
    }
    for name, xs in (("ttft", [r["ttft"] for r in ok]), ("tpot", tpot), ("e2e", [r["e2e"] for r in ok])):
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = pct(xs, 50) * 1e3, pct(xs, 99) * 1e3
        out[f"{name}_p95_ms"] = pct(xs, 95) * 1e3
        out[f"{name}_mean_ms"] = statistics.fmean(xs) * 1e3 if xs else float("nan")
    return out


async def backend_alone(
    be, messages: list[list[dict]], clients: int, per_client: int, max_tokens: int
) -> dict:
    """The same prompts streamed from the server's backend in this process: no HTTP, no retrieval."""
    from serve.types import SamplingOptions

    opts = SamplingOptions(max_tokens=max_tokens)
    results: list[dict] = []

    async def one(i: int) -> None:
        for n in range(per_client):
            t0, ttft, last = time.perf_counter(), None, None
            async for d in be.stream(be.prepare(messages[(i + n * clients) % len(messages)]), opts):
                if d.text and ttft is None:
                    ttft = time.perf_counter() - t0
                last = d
            e2e = time.perf_counter() - t0
            results.append({"ok": True, "ttft": ttft or e2e, "e2e": e2e, "tokens": last.completion_tokens})

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    wall = time.perf_counter() - t0
    return summarize(results, wall, clients)


def rag_messages(index: Path, k: int) -> list[list[dict]]:
    from ragtune.prompt import build_messages
    from retriever import Retriever

    r = Retriever.open(index)
    try:
        return [build_messages(q, r.search(q, k)) for q in QUESTIONS]
    finally:
        r.close()


async def swaps_under_load(
    url: str, bodies: list[dict], index: Path, src: Path, clients: int, seconds: float = 0
) -> dict:
    """Two re-ingests while `clients` stream; the load lasts at least `seconds`."""
    from ingest import ingest

    stop = asyncio.Event()
    t0 = time.perf_counter()
    load = asyncio.create_task(run_level(url, bodies, clients, 0, 0, stop=stop))
    versions = []
    await asyncio.sleep(2 if not seconds else seconds / 4)
    for i in range(2):
        rows = [json.loads(line) for line in src.read_text().splitlines()]
        rows[0]["text"] = f"Revision {i + 1}: " + rows[0]["text"]
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
        report = await asyncio.to_thread(ingest, [src], index, show_progress=False)
        versions.append(report.version)
        await wait_for_version(url, report.version)  # the server polls CURRENT every 0.5 s
        await asyncio.sleep(2 if not seconds else seconds / 4)  # and keeps serving it under load
    await asyncio.sleep(max(0.0, seconds - (time.perf_counter() - t0)))
    stop.set()
    out = await load
    out["published"] = versions
    return out


async def wait_for_version(chat_url: str, version: str, timeout: float = 120.0) -> None:
    import httpx

    url = chat_url.replace("/chat/completions", "/index")
    deadline = time.perf_counter() + timeout
    async with httpx.AsyncClient() as client:
        while (await client.get(url, timeout=30)).json()["version"] != version:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the server did not move to {version} within {timeout:.0f} s")
            await asyncio.sleep(0.2)


def fmt(level: dict) -> str:
    return (
        f"{level['clients']:>3} | {level['requests']:>4} | {level['failed']:>2} | "
        f"{level['ttft_p50_ms']:8.1f} | {level['ttft_p99_ms']:8.1f} | {level['tpot_p50_ms']:6.2f} | "
        f"{level['tpot_p99_ms']:6.2f} | {level['e2e_p50_ms']:8.1f} | {level['e2e_p99_ms']:8.1f} | "
        f"{level['req_per_s']:6.2f} | {level['out_tok_per_s']:7.1f}"
    )


async def main_async(args) -> dict:
    from serve import start_server

    model, index, src = prepare_inputs(args)
    extra = ["--poll-interval", "0.5", "--max-batch-size", "16", "--top-k", str(args.top_k)]
    extra += ["--prefill-precision", args.prefill_precision] + (["--no-cpu-kernels"] * args.no_cpu_kernels)
    extra += ["--weight-precision", args.weight_precision, "--prefix-cache-mb", str(args.prefix_cache_mb)]
    extra += ["--backend", args.backend] + (
        ["--ct2-compute-type", args.ct2_compute_type] * bool(args.ct2_compute_type)
    )
    for spec in args.lora:
        extra += ["--lora", spec]
    extra += ["--gguf-type", args.gguf_type] if args.gguf_type else []
    if args.torch_threads:
        import torch

        extra += ["--torch-threads", str(args.torch_threads)]
        torch.set_num_threads(args.torch_threads)  # the same for the backend-alone baseline here
    report: dict = {"model": str(model), "index": str(index), "max_tokens": args.max_tokens, "levels": []}
    with start_server(model, index, extra_args=extra) as srv:
        url = f"{srv.url}/v1/chat/completions"
        base = {
            "model": model.name,
            "max_tokens": args.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        bodies = [{**base, "messages": [{"role": "user", "content": q}]} for q in QUESTIONS]
        await run_level(url, bodies, 2, 1, 60)  # warm-up
        report["levels"] = await concurrency_levels(url, bodies, args)
        if args.rounds:
            report.update(await overhead(url, bodies, base, model, index, args))
        if src is not None:
            names = [model.name] + [spec.partition("=")[0] for spec in args.lora]
            tokens = args.soak_max_tokens if args.soak else args.max_tokens
            rotating = [
                {**b, "model": names[i % len(names)], "max_tokens": tokens} for i, b in enumerate(bodies)
            ]
            clients = args.soak_clients if args.soak else 8
            report["swaps"] = await swaps_under_load(url, rotating, index, src, clients, args.soak)
            report["swaps"]["models"] = names
    if args.llamacpp_baseline:
        report["llamacpp_baseline"] = await llamacpp_baseline(model, index, args)
    by = {lv["clients"]: lv for lv in report["levels"]}
    if 1 in by and 8 in by:
        report["batching_gain_8_over_1"] = by[8]["out_tok_per_s"] / by[1]["out_tok_per_s"]
    if 1 in by:
        report["weight_read_ms"] = fp32_weight_read_s(model) * 1e3
        report["decode_over_ceiling_1_client"] = report["weight_read_ms"] / by[1]["tpot_p50_ms"]
    return report


async def llamacpp_baseline(model: Path, index: Path, args) -> dict:
    """llama-cpp-python's own single-stream `create_completion` (streamed, greedy) on the GGUF the server
    loads, with the prompts the server builds (rendered by its tokenizer): TTFT and decode tokens/s, p50."""
    from llama_cpp import Llama

    from serve.backends import load_backend
    from serve.llamacpp_models import resolve_files

    files = resolve_files(model, {}, args.gguf_type)
    be = load_backend("llama.cpp", model, max_batch_size=1, llamacpp_options={"gguf_type": args.gguf_type})
    prompts = [be.prepare(m).prompt_ids for m in rag_messages(index, args.top_k)]
    await be.aclose()
    threads = len(os.sched_getaffinity(0))
    llm = Llama(
        str(files.gguf), n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    ttft, rate = [], []
    for ids in prompts[: args.requests_per_client * 2]:
        llm.reset()
        t0, first, n = time.perf_counter(), None, 0
        for _ in llm.create_completion(
            ids, max_tokens=args.max_tokens, temperature=0.0, top_k=1, stream=True
        ):
            n += 1
            first = first or time.perf_counter()
        end = time.perf_counter()
        ttft.append(first - t0)
        if n > 1:
            rate.append((n - 1) / (end - first))
    return {
        "ttft_p50_ms": statistics.median(ttft) * 1e3,
        "decode_tok_s": statistics.median(rate),
        "n": len(ttft),
    }


def fp32_weight_read_s(model: Path) -> float:
    """Seconds to read the model's parameters once as fp32 (their count from the safetensors headers,
    tied weights once): a buffer of that size summed, best of 5."""
    import torch
    from safetensors import safe_open

    n = 0
    for f in sorted(model.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            n += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())  # noqa: SIM118 - not iterable
    buf = torch.ones(n)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        float(buf.sum())
        best = min(best, time.perf_counter() - t)
    return best


def prepare_inputs(args) -> tuple[Path, Path, Path | None]:
    """The model and index folders (built in a temporary folder unless given) and the index's source file
    (None for a given index: no swaps then)."""
    work = Path(tempfile.mkdtemp(prefix="ragtune-bench-serve-"))
    model = Path(args.model) if args.model else build_model(work / "model")
    if args.index:
        return model, Path(args.index), None
    index, src = build_index(work, args.docs)
    return model, index, src


async def concurrency_levels(url: str, bodies: list[dict], args) -> list[dict]:
    """One level per --clients value, printed as a table row as it ends."""
    print(
        "clients | reqs | failed | TTFT p50 ms | TTFT p99 | TPOT p50 ms | TPOT p99 | e2e p50 ms | "
        "e2e p99 | req/s | out tok/s"
    )
    levels = []
    for c in args.clients:
        level = await run_level(url, bodies, c, args.requests_per_client, args.time_limit)
        levels.append(level)
        print(fmt(level), flush=True)
    return levels


async def overhead(url: str, bodies: list[dict], base: dict, model: Path, index: Path, args) -> dict:
    """Overhead at 8 clients: gateway, the same server with prebuilt prompts, and the backend alone,
    interleaved for --rounds rounds (the machine is shared; the median ratio resists drift)."""
    from serve.backends import load_backend

    msgs = rag_messages(index, args.top_k)
    raw = [{**base, "raw_prompt": True, "messages": m} for m in msgs]
    backend = load_backend(  # the server's backend with the server's settings, in this process
        args.backend,
        model,
        max_batch_size=16,
        compute_type=args.ct2_compute_type,
        llamacpp_options={"gguf_type": args.gguf_type},
        prefill_precision=args.prefill_precision,
        cpu_kernels=not args.no_cpu_kernels,
        weight_precision=args.weight_precision,
        prefix_cache_mb=args.prefix_cache_mb,
    )
    rounds = []
    for _ in range(args.rounds):
        g = await run_level(url, bodies, 8, args.requests_per_client, args.time_limit)
        h = await run_level(url, raw, 8, args.requests_per_client, args.time_limit)
        b = await backend_alone(backend, msgs, 8, args.requests_per_client, args.max_tokens)
        rounds.append({"gateway": g, "raw_http": h, "backend": b})
    await backend.aclose()
    ratio = [r["gateway"]["e2e_mean_ms"] / r["backend"]["e2e_mean_ms"] for r in rounds]
    ratio_http = [r["gateway"]["e2e_mean_ms"] / r["raw_http"]["e2e_mean_ms"] for r in rounds]
    return {
        "overhead_rounds": rounds,
        "gateway_overhead_vs_backend": statistics.median(ratio),
        "gateway_overhead_vs_raw_http": statistics.median(ratio_http),
        "gateway_overhead_vs_backend_rounds": ratio,
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model folder (default: build the tiny bench model)")
    ap.add_argument(
        "--index", help="index folder (default: build one from SciFact; swaps need it built here)"
    )
    ap.add_argument("--docs", type=int, default=300, help="SciFact abstracts in the built index")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--requests-per-client", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the overhead measurement")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per concurrency level at most")
    ap.add_argument("--torch-threads", type=int, help="torch CPU threads, in the server and the baseline")
    ap.add_argument(
        "--prefill-precision",
        choices=["auto", "float32", "bf16-autocast"],
        default="auto",
        help="server and baseline (auto: bf16 autocast on a CPU with native bf16)",
    )
    ap.add_argument(
        "--weight-precision",
        choices=["auto", "float32", "bf16"],
        default="auto",
        help="server and baseline: linear weights (auto: bf16 on a CPU with native bf16)",
    )
    ap.add_argument(
        "--prefix-cache-mb",
        type=float,
        default=0,
        help="server and baseline: KV states of recent prompts kept for reuse (default 0, off: the bench "
        "cycles 8 questions and its warm-up asks the first ones, so with reuse every level measures cache "
        "hits; the server's own default is 512)",
    )
    ap.add_argument(
        "--no-cpu-kernels",
        action="store_true",
        help="transformers' own decode path (the backend before issue 10)",
    )
    ap.add_argument("--backend", choices=["transformers", "ctranslate2", "llama.cpp"], default="transformers")
    ap.add_argument(
        "--gguf-type", help="llama.cpp: the type a model folder is converted to (default: serve's default)"
    )
    ap.add_argument("--lora", action="append", default=[], help="llama.cpp: NAME=ADAPTER, served and rotated")
    ap.add_argument("--soak", type=float, default=0, help="seconds of load around the two index swaps")
    ap.add_argument("--soak-clients", type=int, default=16)
    ap.add_argument("--soak-max-tokens", type=int, default=16, help="answer tokens of the soak's requests")
    ap.add_argument(
        "--llamacpp-baseline", action="store_true", help="llama-cpp-python create_completion, single stream"
    )
    ap.add_argument("--ct2-compute-type", choices=["int8", "float32"], help="ctranslate2: weights")
    ap.add_argument("--json", help="write the full report here")
    return ap.parse_args()


def print_report(report: dict) -> None:
    for i, r in enumerate(report.get("overhead_rounds", [])):
        print(
            f"round {i + 1}, 8 clients, e2e mean ms: gateway {r['gateway']['e2e_mean_ms']:.1f}, "
            f"raw-prompt HTTP {r['raw_http']['e2e_mean_ms']:.1f}, "
            f"backend alone {r['backend']['e2e_mean_ms']:.1f}"
        )
    if "weight_read_ms" in report:
        print(
            f"fp32 weight read {report['weight_read_ms']:.1f} ms (ceiling {1e3 / report['weight_read_ms']:.1f}"
            f" tok/s); 1-client decode ÷ ceiling: {report['decode_over_ceiling_1_client']:.3f}"
        )
    for key in ("gateway_overhead_vs_backend", "gateway_overhead_vs_raw_http", "batching_gain_8_over_1"):
        if key in report:
            print(f"{key}: {report[key]:.3f}")
    if "swaps" in report:
        s = report["swaps"]
        print(
            f"index swaps under {s['clients']} clients for {s['wall_s']:.0f} s (models {s['models']}): "
            f"published {s['published']}, {s['requests']} requests, {s['failed']} failed, e2e p50 "
            f"{s['e2e_p50_ms']:.0f} ms p95 {s['e2e_p95_ms']:.0f} ms, versions served {s['versions']}"
        )
    if "llamacpp_baseline" in report:
        b, by = report["llamacpp_baseline"], {lv["clients"]: lv for lv in report["levels"]}
        line = f"llama-cpp-python create_completion: TTFT p50 {b['ttft_p50_ms']:.0f} ms, decode {b['decode_tok_s']:.1f} tok/s"
        if 1 in by:
            line += f"; server 1-client decode ÷ it: {1e3 / by[1]['tpot_p50_ms'] / b['decode_tok_s']:.2f}"
        print(line)


def main() -> None:
    args = parse_args()
    report = asyncio.run(main_async(args))
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
