"""Benchmark of the knowledge index, printed as ratios against baselines run in the same process.

    .venv/bin/python bench/ingest.py [--docs 600] [--queries 100] [--int8]

On the first --docs abstracts of BEIR SciFact (../shared/data/beir_scifact, real text):
  1. ingest throughput ÷ raw SentenceTransformer.encode throughput on the very chunk texts ingest embeds
     (goal ≥ 0.9): what reading, chunking, the chunk store, FAISS and publishing cost on top of the model;
  2. refresh with 1% of the documents changed ÷ a full rebuild (goal ≤ 0.05);
  3. Retriever.search p50 latency ÷ (one encode + a bare FAISS IndexFlatIP search) p50 (goal ≤ 2);
  4. each encoder engine's speed ÷ torch fp32 (OpenVINO fp32, and with --int8 the onnx-int8 backend) on the
     chunk texts ingest embedded, and its recall@10 against torch's exact search (goal ≥ 2.3× at ≥ 0.99).
Timings are the best of --repeat interleaved runs (latency: p50 over --queries); the machine is shared,
so re-run before quoting.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
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


def load_corpus(n: int) -> list[dict]:
    rows = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            rows.append({"id": obj["_id"], "title": obj.get("title", ""), "text": obj["text"]})
            if len(rows) >= n:
                break
    return rows


def load_queries(n: int) -> list[str]:
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def note(**kw) -> None:
    """Print figures as they are measured, so a cut-off run still says something."""
    print(
        "  ",
        ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()),
        file=sys.stderr,
        flush=True,
    )


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def measure_ingest(enc, src: Path, work: Path, repeat: int) -> tuple[dict, list[str]]:
    """1. full ingest ÷ raw encode of the very chunk texts it embedded (interleaved, best of `repeat`)."""
    from ingest import ingest
    from ingest.chunking import embedding_text
    from retriever import KnowledgeIndex

    ingest_times, raw_times, texts = [], [], []
    for _ in range(repeat):
        ingest_times.append(
            timed(lambda: ingest([src], work / "idx", encoder=enc, full=True, show_progress=False))[0]
        )
        if not texts:
            with KnowledgeIndex.open(work / "idx") as index:
                texts = [embedding_text(_as_chunk(p)) for p in index.iter_passages()]
        raw_times.append(
            timed(
                lambda texts=texts: enc.model.encode(
                    texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
                )
            )[0]
        )
    t_ingest, t_raw = min(ingest_times), min(raw_times)
    return {
        "chunks": len(texts),
        "ingest_s": t_ingest,
        "raw_encode_s": t_raw,
        "ingest_chunks_per_s": len(texts) / t_ingest,
        "raw_chunks_per_s": len(texts) / t_raw,
        "throughput_ratio": t_raw / t_ingest,
    }, texts


def measure_refresh(enc, docs: list[dict], src: Path, work: Path, repeat: int, t_full: float) -> dict:
    """2. refresh with 1% of the documents changed ÷ a full rebuild."""
    from ingest import ingest

    n_change = max(1, len(docs) // 100)
    times = []
    for r in range(repeat):
        write_jsonl(
            src,
            [
                dict(d, text=d["text"] + f" Revised ({r})." if i < n_change else d["text"])
                for i, d in enumerate(docs)
            ],
        )
        t, rep = timed(lambda: ingest([src], work / "idx", encoder=enc, show_progress=False))
        assert rep.counts["changed"] == n_change, rep.counts
        times.append(t)
    return {
        "changed_docs": n_change,
        "refresh_s": min(times),
        "full_rebuild_s": t_full,
        "refresh_ratio": min(times) / t_full,
    }


def measure_search(enc, queries: list[str], work: Path) -> dict:
    """3. Retriever.search p50 ÷ (one encode + a bare FAISS IndexFlatIP search) p50."""
    import faiss
    import numpy as np

    from retriever import KnowledgeIndex, Retriever

    retr = Retriever(KnowledgeIndex.open(work / "idx"), enc)
    with KnowledgeIndex.open(work / "idx") as index:
        vecs = np.vstack([index.faiss.reconstruct(int(i)) for i in faiss.vector_to_array(index.faiss.id_map)])
    bare = faiss.IndexFlatIP(vecs.shape[1])
    bare.add(vecs)
    ours, base = [], []
    for q in queries:
        ours.append(timed(lambda q=q: retr.search(q, 10))[0])
        base.append(
            timed(
                lambda q=q: bare.search(
                    enc.model.encode([q], normalize_embeddings=True, convert_to_numpy=True), 10
                )
            )[0]
        )
    retr.close()
    p50, b50 = statistics.median(ours), statistics.median(base)
    return {
        "search_p50_ms": p50 * 1e3,
        "baseline_p50_ms": b50 * 1e3,
        "latency_ratio": p50 / b50,
        "search_p95_ms": float(np.percentile(ours, 95)) * 1e3,
    }


def measure_engines(texts: list[str], queries: list[str], repeat: int, int8: bool) -> dict:
    """4. each encoder engine's speed ÷ torch fp32 on the ingest's chunk texts, and its recall@10 against
    torch's exact search (queries → chunks), interleaved, best of `repeat`."""
    import numpy as np

    from retriever import Encoder

    engines = {name: Encoder(engine=name) for name in ("torch", "openvino", "openvino-bf16")}
    if int8:
        engines["onnx-int8"] = Encoder(backend="onnx-int8")
    for e in engines.values():
        e.encode(["warm up the model"] * 8)
    times: dict[str, list[float]] = {n: [] for n in engines}
    vecs: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for name, e in engines.items():
            t, vecs[name] = timed(lambda e=e: e.encode(texts))
            times[name].append(t)
    exact_q = engines["torch"].encode(queries)
    exact = np.argsort(-(exact_q @ vecs["torch"].T), axis=1)[:, :10]
    out = {}
    for name, e in engines.items():
        approx = np.argsort(-(e.encode(queries) @ vecs[name].T), axis=1)[:, :10]
        out[f"{name}_s"] = min(times[name])
        out[f"{name}_speedup"] = min(times["torch"]) / min(times[name])
        out[f"{name}_recall_at_10"] = float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
        )
        out[f"{name}_min_cosine"] = float((vecs[name] * vecs["torch"]).sum(1).min())
    return out


def print_figures(figures: dict) -> None:
    print(
        f"\nragtune index benchmark: {figures['docs']} SciFact abstracts -> {figures['chunks']} chunks, "
        f"{figures['threads']} torch threads, default encoder engine {figures['engine']}"
    )
    rows = [
        (
            "ingest ÷ raw encode throughput",
            figures["throughput_ratio"],
            "≥ 0.9",
            f"{figures['ingest_chunks_per_s']:.1f} vs {figures['raw_chunks_per_s']:.1f} chunks/s",
        ),
        (
            "refresh 1% ÷ full rebuild",
            figures["refresh_ratio"],
            "≤ 0.05",
            f"{figures['refresh_s']:.2f} s ({figures['changed_docs']} docs) vs {figures['full_rebuild_s']:.2f} s",
        ),
        (
            "search p50 ÷ (encode + bare FAISS)",
            figures["latency_ratio"],
            "≤ 2",
            f"{figures['search_p50_ms']:.1f} ms vs {figures['baseline_p50_ms']:.1f} ms (p95 {figures['search_p95_ms']:.1f})",
        ),
    ]
    for name in ("openvino", "openvino-bf16", "onnx-int8"):
        if f"{name}_speedup" in figures:
            rows.append(
                (
                    f"{name} ÷ torch fp32 encode speed",
                    figures[f"{name}_speedup"],
                    "≥ 2.3",
                    (
                        f"recall@10 vs torch {figures[f'{name}_recall_at_10']:.3f} (goal ≥ 0.99), "
                        f"min cosine {figures[f'{name}_min_cosine']:.5f}"
                    ),
                )
            )
    for name, value, goal, detail in rows:
        print(f"  {name:<38} {value:7.3f}   goal {goal:<7} {detail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=600, help="SciFact abstracts to ingest")
    ap.add_argument("--queries", type=int, default=100, help="queries for the latency figure")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (best of)")
    ap.add_argument("--int8", action="store_true", help="also measure the onnx-int8 encoder backend")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    from retriever import Encoder

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    docs, queries = load_corpus(args.docs), load_queries(args.queries)
    work = Path(tempfile.mkdtemp(prefix="ragtune-bench-"))
    enc = Encoder()  # the default engine for this machine
    figures: dict = {"docs": len(docs), "threads": torch.get_num_threads(), "engine": enc.engine}
    try:
        enc.encode(["warm up the model"] * 8)
        src = work / "corpus.jsonl"
        write_jsonl(src, docs)
        measured, texts = measure_ingest(enc, src, work, args.repeat)
        figures.update(measured)
        note(**figures)
        figures.update(measure_refresh(enc, docs, src, work, args.repeat, figures["ingest_s"]))
        note(**figures)
        figures.update(measure_search(enc, queries, work))
        note(**figures)
        figures.update(measure_engines(texts, queries, args.repeat, args.int8))
        note(**figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def _as_chunk(p):
    from ragtune.records import Chunk

    return Chunk(id=p.chunk_id, doc_id=p.doc_id, text=p.text, start=p.start, end=p.end, title=p.title)


if __name__ == "__main__":
    main()
