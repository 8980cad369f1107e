"""`ragtune run` on Wikipedia text it has never seen, judged by SQuAD's own human questions.

    .venv/bin/python bench/run_squad.py [--work bench-out/run-squad] [--articles 10] [--paragraphs 5]
                                        [--questions 100] [--budget-minutes 30]

1. Documents: --paragraphs paragraphs from each of --articles SQuAD v1.1 dev articles (seeded choice),
   one .txt file per paragraph (the article's title on the first line). Only the documents: no SQuAD
   question is used for training; the run writes its own questions from them (`ragtune synth`).
2. `ragtune run DOCS --out RUN --qa human.jsonl` with the embedded defaults: the human questions of those
   paragraphs (a seeded sample of --questions, every accepted answer kept) decide the winner.
3. Prints the run's wall time and each system's EM/F1 with 95% CIs on the human questions and on the
   synthetic test split, the winner against untuned RAG (paired F1 difference and CI), and whether the
   synthetic split picked the same winner as the human questions.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO.parent / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json"


def write_inputs(
    work: Path, n_articles: int, n_paragraphs: int, n_questions: int, seed: int
) -> tuple[Path, Path]:
    """The documents folder and the human questions, both seeded."""
    articles = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    rng = random.Random(seed)
    docs, qa = work / "docs", []
    docs.mkdir(parents=True, exist_ok=True)
    for art in rng.sample(articles, n_articles):
        title = art["title"].replace("_", " ")
        for j, par in enumerate(rng.sample(art["paragraphs"], min(n_paragraphs, len(art["paragraphs"])))):
            name = f"{art['title']}_{j}.txt"
            (docs / name).write_text(f"{title}\n\n{par['context']}\n", encoding="utf-8")
            for q in par["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in q["answers"]))
                qa.append({"id": q["id"], "question": q["question"], "answer": answers, "doc_ids": [name]})
    picked = rng.sample(qa, min(n_questions, len(qa)))
    human = work / "human.jsonl"
    human.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    return docs, human


def table(results: dict) -> None:
    for split, s in results["splits"].items():
        print(f"\n{split} (n={s['qa']['n']}): system  EM [95% CI]  F1 [95% CI]  contains")
        for name, v in s["systems"].items():
            m = v["metrics"]
            cells = [
                f"{m[k]['mean']:.1f} [{m[k]['low']:.1f}, {m[k]['high']:.1f}]" for k in ("exact_match", "f1")
            ]
            contains = m.get("contains", {}).get("mean")
            print(
                f"  {name:<12} {cells[0]:<20} {cells[1]:<20} {'' if contains is None else f'{contains:.1f}'}"
            )


def versus(results: dict, split: str, a: str, b: str, metric: str = "f1") -> str:
    for c in results["splits"][split]["comparisons"]:
        if c["metric"] == metric and {c["a"], c["b"]} == {a, b}:
            sign = 1 if c["a"] == a else -1
            lo, hi = sorted((sign * c["low"], sign * c["high"]))
            return f"{a} - {b} on {split} {metric}: {sign * c['diff']:+.1f} [{lo:+.1f}, {hi:+.1f}]"
    return f"{a} vs {b}: no comparison stored"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=REPO / "bench-out" / "run-squad")
    p.add_argument("--articles", type=int, default=10)
    p.add_argument("--paragraphs", type=int, default=5)
    p.add_argument("--questions", type=int, default=100)
    p.add_argument("--budget-minutes", type=float, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("run_args", nargs="*", help="More `ragtune run` options (after --).")
    args = p.parse_args()
    docs, human = write_inputs(args.work, args.articles, args.paragraphs, args.questions, args.seed)
    cmd = [str(Path(sys.executable).with_name("ragtune")), "run", str(docs), "--out", str(args.work / "run")]
    cmd += ["--qa", str(human), "--budget-minutes", str(args.budget_minutes), *args.run_args]
    print("$ " + " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    results = json.loads((args.work / "run" / "report" / "results.json").read_text(encoding="utf-8"))
    winner = json.loads((args.work / "run" / "winner.json").read_text(encoding="utf-8"))
    print(f"\nwall time of `ragtune run`: {wall:.0f} s ({wall / 60:.1f} min)")
    table(results)
    print(f"\nwinner: {winner['system']} ({winner['won_on']['text']})")
    print(versus(results, "user", winner["system"], "rag"))
    if "same_winner_on_synthetic_test" in winner["won_on"]:
        print(
            f"synthetic test split's winner: {winner['won_on']['synthetic_test_winner']} "
            f"({'the same' if winner['won_on']['same_winner_on_synthetic_test'] else 'not the same'})"
        )


if __name__ == "__main__":
    main()
