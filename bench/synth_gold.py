"""How often a synthetic pair's answer is one a human wrote for the same document.

    .venv/bin/python bench/synth_gold.py --synth DIR --gold QA.jsonl [QA2.jsonl ...] [--json]

DIR is a `ragtune synth` output (train/validation/test.jsonl); the gold files are human QA with doc_ids
(e.g. `ragtune data import squad` splits, or the demo world's qa/*.jsonl). For each kept synthetic pair,
its answer is scored against every gold answer of every gold question on the same document with the
official SQuAD v1.1 measures (eval.exact_match / eval.token_f1, max over the golds):
  gold_em      share of pairs whose answer equals a gold answer after SQuAD normalisation;
  gold_f1_50   share of pairs whose best token F1 against a gold answer is at least 0.5;
  mean_f1      mean of the best F1.
A match says the generator picked a fact a human found worth asking about; it does not check the
question's wording. Pairs on documents with no gold question are counted apart (`no_gold`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def gold_match(synth_dir: Path, gold_files: list[Path]) -> dict:
    from eval import exact_match, token_f1
    from ragtune.records import load_qa

    golds: dict[str, list[str]] = {}
    for path in (p for p in gold_files if p.stat().st_size):  # an empty split has no questions
        for ex in load_qa(path):
            for d in ex.doc_ids:
                golds.setdefault(d, []).extend(ex.answers)
    pairs = [
        ex
        for name in ("train", "validation", "test")
        if (synth_dir / f"{name}.jsonl").stat().st_size
        for ex in load_qa(synth_dir / f"{name}.jsonl")
    ]
    scored = [
        (exact_match(ex.answer, golds[ex.doc_ids[0]]), token_f1(ex.answer, golds[ex.doc_ids[0]]))
        for ex in pairs
        if ex.doc_ids[0] in golds
    ]
    n = len(scored)
    return {
        "pairs": len(pairs),
        "scored": n,
        "no_gold": len(pairs) - n,
        "gold_em": sum(em for em, _ in scored) / n if n else None,
        "gold_f1_50": sum(f1 >= 0.5 for _, f1 in scored) / n if n else None,
        "mean_f1": sum(f1 for _, f1 in scored) / n if n else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synth", required=True, type=Path, help="A `ragtune synth` output folder.")
    ap.add_argument(
        "--gold",
        required=True,
        type=Path,
        nargs="+",
        action="extend",
        help="Human QA .jsonl files with doc_ids.",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = gold_match(args.synth, args.gold)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{r['scored']} synthetic pairs on documents with gold questions ({r['no_gold']} without)")
    if r["scored"]:
        print(f"  answer = a gold answer (EM):  {r['gold_em']:.1%}")
        print(f"  answer F1 >= 0.5 vs a gold:   {r['gold_f1_50']:.1%}")
        print(f"  mean best F1:                 {r['mean_f1']:.3f}")


if __name__ == "__main__":
    main()
