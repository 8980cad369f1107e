"""SciFact retriever benchmark: the base encoder against a LoRA-tuned one, through ragtune's own commands.

    .venv/bin/python bench/scifact.py [--work DIR] [--epochs 1] [--lr 5e-4] [--hard-negatives 1] [--batch-size 24]

From the raw BEIR folder (../shared/data/beir_scifact) to the table:
  1. `ragtune data import beir`      documents.jsonl, train.jsonl (809 queries), test.jsonl (300)
  2. `ragtune ingest`                the base index (default chunking, the default encoder)
  3. `ragtune eval retrieval`        test nDCG@10, Recall@100 per query (BEIR/MTEB's pytrec_eval)
  4. `ragtune tune retriever`        LoRA on the 809 training queries with mined hard negatives
  5. `ragtune ingest --full`         the same documents re-embedded with the tuned encoder
  6. `ragtune eval retrieval`        the tuned figures, and a paired bootstrap 95% CI over the 300 queries
Each step's wall time is printed; steps whose output exists in --work are reused (delete it to rerun).
The published all-MiniLM-L6-v2 figure (MTEB: whole abstracts, 256 tokens, no chunking) is printed beside ours.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCIFACT = REPO.parent / "shared" / "data" / "beir_scifact"
PUBLISHED = {"ndcg@10": 0.64508, "recall@100": 0.925}  # MTEB results for all-MiniLM-L6-v2 (data README)
METRICS = ("ndcg@10", "recall@100")


def ragtune(*args: str) -> str:
    cmd = [str(Path(sys.executable).with_name("ragtune")), *args]
    print("$ ragtune " + " ".join(args), flush=True)
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"ragtune {args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def step(name: str, out: Path, fn, times: dict) -> None:
    if out.exists():
        print(f"[{name}] reusing {out}", flush=True)
        return
    t0 = time.perf_counter()
    fn()
    times[name] = time.perf_counter() - t0
    print(f"[{name}] {times[name]:.0f} s", flush=True)


def evaluate(work: Path, index: Path, name: str) -> None:
    res = ragtune("eval", "retrieval", "--beir", str(SCIFACT), "--index", str(index), "--json", "--per-query")
    (work / f"{name}.json").write_text(res)


def compare(work: Path) -> dict:
    from eval.stats import paired_bootstrap

    base, tuned = (json.loads((work / f"{n}.json").read_text()) for n in ("eval-base", "eval-tuned"))
    qids = sorted(base["per_query"])
    rows = {}
    for m in METRICS:
        a = [tuned["per_query"][q][m] for q in qids]
        b = [base["per_query"][q][m] for q in qids]
        rows[m] = {
            "base": base["metrics"][m],
            "tuned": tuned["metrics"][m],
            "published": PUBLISHED[m],
            "diff": paired_bootstrap(a, b, seed=0),
        }
    return {"n_queries": len(qids), "metrics": rows}


def run(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data, base_index, tuned_index, model = (
        work / n for n in ("data", "index-base", "index-tuned", "retriever")
    )
    times: dict[str, float] = {}
    step("import", data, lambda: ragtune("data", "import", "beir", str(SCIFACT), "--out", str(data)), times)
    step(
        "ingest base",
        base_index,
        lambda: ragtune("ingest", str(data / "documents.jsonl"), "--index", str(base_index)),
        times,
    )
    step("eval base", work / "eval-base.json", lambda: evaluate(work, base_index, "eval-base"), times)
    step(
        "tune retriever",
        model,
        lambda: ragtune(
            "tune",
            "retriever",
            "--data",
            str(data / "train.jsonl"),
            "--index",
            str(base_index),
            "--out",
            str(model),
            "--epochs",
            str(args.epochs),
            "--lr",
            str(args.lr),
            "--hard-negatives",
            str(args.hard_negatives),
            "--batch-size",
            str(args.batch_size),
            "--lora-r",
            str(args.lora_r),
            "--val-fraction",
            str(args.val_fraction),
        ),
        times,
    )
    step(
        "ingest tuned",
        tuned_index,
        lambda: ragtune(
            "ingest", str(data / "documents.jsonl"), "--index", str(tuned_index), "--retriever", str(model)
        ),
        times,
    )
    step("eval tuned", work / "eval-tuned.json", lambda: evaluate(work, tuned_index, "eval-tuned"), times)
    result = compare(work) | {"seconds": times, "settings": vars(args)}
    (work / "scifact.json").write_text(json.dumps(result, indent=2))
    print_table(result)


def print_table(result: dict) -> None:
    print(f"\nSciFact test, {result['n_queries']} queries (paired bootstrap 95% CI of tuned − base)")
    print(f"{'metric':<11} {'published':>9} {'base':>7} {'tuned':>7} {'diff [95% CI]':>26}")
    for m, r in result["metrics"].items():
        d = r["diff"]
        print(
            f"{m:<11} {r['published']:>9.4f} {r['base']:>7.4f} {r['tuned']:>7.4f} "
            f"{d['diff']:>+8.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
        )
    for name, s in result["seconds"].items():
        print(f"  {name}: {s:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench-out/scifact")
    p.add_argument("--epochs", type=int, default=1)  # the measured run (docs/benchmarks.md)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--hard-negatives", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--val-fraction", type=float, default=0.1)
    run(p.parse_args())


if __name__ == "__main__":
    main()
