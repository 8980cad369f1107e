"""SciFact hybrid retrieval: dense, BM25 and hybrid on one index, through ragtune's own commands.

    .venv/bin/python bench/hybrid.py [--work DIR] [--queries 300] [--retriever FOLDER]

  1. `ragtune data import beir`      documents.jsonl from ../shared/data/beir_scifact
  2. `ragtune ingest`                one index version: FAISS + chunk store + the lexical (BM25) part;
                                   with --retriever, embedded by that encoder (e.g. the LoRA-tuned one
                                   that bench/scifact.py's `ragtune tune retriever` step writes)
  3. `ragtune eval retrieval --retrieval dense|bm25|hybrid` (and hybrid --fusion weighted): test nDCG@10,
     Recall@100 per query; paired bootstrap 95% CIs of hybrid − dense and hybrid − bm25 (300 queries)
  4. in this process: query latency p50 of each mode (k 10, one query at a time, modes interleaved so that
     a noisy machine slows all alike) and hybrid ÷ dense
  5. the lexical part's build time and size ÷ the dense part's (from the version's manifest)
Steps whose output exists in --work are reused (delete it to rerun). BEIR's published BM25 (Anserini) is
printed beside ours.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.scifact import SCIFACT, ragtune, step  # the benchmarks' one way to run a step

PUBLISHED_BM25 = {"ndcg@10": 0.665, "recall@100": 0.908}  # BEIR paper (Thakur et al. 2021), Anserini BM25
METRICS = ("ndcg@10", "recall@100")
RUNS = {  # name -> extra `ragtune eval retrieval` flags
    "dense": ["--retrieval", "dense"],
    "bm25": ["--retrieval", "bm25"],
    "hybrid": ["--retrieval", "hybrid"],
    "hybrid-weighted": ["--retrieval", "hybrid", "--fusion", "weighted", "--fusion-weight", "0.5"],
}


def evaluate(work: Path, index: Path, name: str) -> None:
    out = ragtune(
        "eval",
        "retrieval",
        "--beir",
        str(SCIFACT),
        "--index",
        str(index),
        *RUNS[name],
        "--json",
        "--per-query",
    )
    (work / f"eval-{name}.json").write_text(out)


def compare(work: Path) -> dict:
    from eval.stats import paired_bootstrap

    res = {n: json.loads((work / f"eval-{n}.json").read_text()) for n in RUNS}
    qids = sorted(res["dense"]["per_query"])
    out = {
        "n_queries": len(qids),
        "metrics": {n: {m: r["metrics"][m] for m in METRICS} for n, r in res.items()},
    }
    out["diff"] = {
        f"hybrid - {other}": {
            m: paired_bootstrap(
                [res["hybrid"]["per_query"][q][m] for q in qids],
                [res[other]["per_query"][q][m] for q in qids],
                seed=0,
            )
            for m in METRICS
        }
        for other in ("dense", "bm25")
    }
    return out


def latency(index: Path, n_queries: int) -> dict:
    """p50 of Retriever.search(q, 10) per mode on the test queries, one at a time, modes interleaved."""
    from eval.beir import load_beir
    from retriever import Retriever

    queries = list(load_beir(SCIFACT, "test")["queries"].values())[:n_queries]
    r = Retriever.open(index)
    modes = ("dense", "bm25", "hybrid")
    for q in queries[:20]:  # warm-up: the encoder's first calls and the page cache
        for m in modes:
            r.search(q, 10, m)
    times: dict[str, list[float]] = {m: [] for m in modes}
    for q in queries:
        for m in modes:
            t0 = time.perf_counter()
            r.search(q, 10, m)
            times[m].append(time.perf_counter() - t0)
    p50 = {m: statistics.median(t) * 1000 for m, t in times.items()}
    r.close()
    return {"p50_ms": p50, "hybrid_over_dense": p50["hybrid"] / p50["dense"], "n": len(queries)}


def sizes(index: Path, ingest_report: dict) -> dict:
    """Build time and bytes of the lexical part against the dense one (FAISS + embedding), from the manifest."""
    from retriever import KnowledgeIndex

    with KnowledgeIndex.open(index, verify=False) as ki:
        m = ki.manifest
    files = m["files"]
    lexical_bytes = sum(v["size"] for k, v in files.items() if k.startswith("lexical/"))
    lexical_s = m["lexical"]["build_s"]
    dense_s = ingest_report["seconds"] - lexical_s  # reading, chunking, embedding, FAISS, chunk store
    return {
        "lexical_build_s": lexical_s,
        "dense_build_s": dense_s,
        "build_ratio": lexical_s / dense_s,
        "lexical_bytes": lexical_bytes,
        "faiss_bytes": files["index.faiss"]["size"],
        "size_ratio": lexical_bytes / files["index.faiss"]["size"],
        "chunks": m["counts"]["chunks"],
    }


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data, index = work / "data", work / ("index-tuned" if args.retriever else "index-base")
    encoder = ["--retriever", str(args.retriever)] if args.retriever else []
    times: dict[str, float] = {}
    step("import", data, lambda: ragtune("data", "import", "beir", str(SCIFACT), "--out", str(data)), times)
    report = work / "ingest.json"
    step(
        "ingest",
        report,
        lambda: report.write_text(
            ragtune("ingest", str(data / "documents.jsonl"), "--index", str(index), *encoder, "--json")
        ),
        times,
    )
    for name in RUNS:
        step(f"eval {name}", work / f"eval-{name}.json", lambda n=name: evaluate(work, index, n), times)
    result = compare(work)
    result["latency"] = latency(index, args.queries)
    result["build"] = sizes(index, json.loads(report.read_text()))
    result["seconds"] = times
    result["retriever"] = str(args.retriever) if args.retriever else "default"
    (work / "hybrid.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(r: dict) -> None:
    print(f"\nSciFact test, {r['n_queries']} queries, retriever {r.get('retriever', 'default')}")
    print(f"{'':<16} {'nDCG@10':>8} {'R@100':>8}")
    print(f"{'published BM25':<16} {PUBLISHED_BM25['ndcg@10']:>8.4f} {PUBLISHED_BM25['recall@100']:>8.4f}")
    for name, m in r["metrics"].items():
        print(f"{name:<16} {m['ndcg@10']:>8.4f} {m['recall@100']:>8.4f}")
    for name, d in r["diff"].items():
        cells = "  ".join(f"{m} {v['diff']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}]" for m, v in d.items())
        print(f"{name:<16} {cells}")
    lat, b = r["latency"], r["build"]
    p50 = "  ".join(f"{m} {v:.2f} ms" for m, v in lat["p50_ms"].items())
    print(f"latency p50 (k 10, {lat['n']} queries): {p50}; hybrid ÷ dense {lat['hybrid_over_dense']:.2f}")
    print(
        f"build: lexical {b['lexical_build_s']:.2f} s vs dense {b['dense_build_s']:.1f} s (÷ {b['build_ratio']:.4f}); "
        f"size: lexical {b['lexical_bytes'] / 1e6:.2f} MB vs FAISS {b['faiss_bytes'] / 1e6:.2f} MB "
        f"(÷ {b['size_ratio']:.3f}), {b['chunks']} chunks"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", help="Default bench-out/hybrid, or bench-out/hybrid-tuned with --retriever.")
    p.add_argument("--queries", type=int, default=300, help="Test queries timed per mode.")
    p.add_argument(
        "--retriever",
        type=Path,
        help="Encoder folder to embed the index with (default: the embedded all-MiniLM-L6-v2).",
    )
    args = p.parse_args()
    args.work = args.work or ("bench-out/hybrid-tuned" if args.retriever else "bench-out/hybrid")
    print_table(run(args))


if __name__ == "__main__":
    main()
