"""The evaluation step: every system on the synthetic test split (a seeded sample within the budget) and,
when given, on the user's own questions; the merged results land in RUN/eval/results.json. Then the
forgetting check: every fine-tune against the base on general-knowledge questions (RUN/eval/forgetting.json)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from lifecycle.budget import Plan
from ragtune.records import iter_jsonl, write_jsonl

USER_SPLIT = "user"  # the split name of the user's own questions (--qa)


def sample_test(test_qa: Path, dst: Path, plan: Plan, seed: int) -> dict[str, Any]:
    """The synthetic test questions scored: all of them, or a seeded sample of the plan's size."""
    rows = [o for _, o in iter_jsonl(test_qa)]
    cut = None
    if len(rows) > plan.max_test_questions:
        picked = set(random.Random(seed).sample(range(len(rows)), plan.max_test_questions))
        cut = f"scored {plan.max_test_questions} of {len(rows)} synthetic test questions (a seeded sample)"
        rows = [r for i, r in enumerate(rows) if i in picked]
    write_jsonl(dst, rows)
    return {"path": dst, "n": len(rows), "cut": cut}


def evaluate_systems(
    specs: list[dict[str, Any]],
    test_qa: Path,
    user_qa: str | None,
    train_qa: Path,
    out: Path,
    seed: int,
    progress: bool,
    metric: str = "contains",
) -> dict[str, Any]:
    """Run the comparison split by split (each resumable from eval's prediction cache), merge, save."""
    from eval import merge_results, run_comparison

    eval_dir = out / "eval"
    parts = [
        run_comparison(
            test_qa, specs, out_dir=eval_dir, train_qa=train_qa, seed=seed, progress=progress, metric=metric
        )
    ]
    if user_qa:
        parts.append(
            run_comparison(
                user_qa,
                specs,
                out_dir=eval_dir,
                train_qa=train_qa,
                split=USER_SPLIT,
                seed=seed,
                progress=progress,
                metric=metric,
            )
        )
    results = merge_results(*parts)
    path = eval_dir / "results.json"
    tmp = path.with_name(f".results.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(results, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return {"path": str(path), "splits": list(results["splits"])}


def sample_general(dst: Path, n: int, seed: int) -> Path:
    """`n` of eval's general-knowledge questions (a seeded sample, in file order) for the forgetting check."""
    from eval import GENERAL_QA

    rows = [o for _, o in iter_jsonl(GENERAL_QA)]
    picked = set(random.Random(f"general:{seed}").sample(range(len(rows)), min(n, len(rows))))
    write_jsonl(dst, [r for i, r in enumerate(rows) if i in picked])
    return dst


def measure_forgetting(
    tuned: dict[str, Path],
    base: Path,
    general_qa: Path,
    out: Path,
    seed: int,
    max_tokens: int,
    progress: bool,
) -> dict[str, Any]:
    """Each fine-tune against the base on the general questions (eval.forgetting_of); RUN/eval/forgetting.json."""
    from eval import forgetting_of

    res = forgetting_of(tuned, base, general_qa, seed=seed, max_tokens=max_tokens, progress=progress)
    path = out / "eval" / "forgetting.json"
    tmp = path.with_name(f".forgetting.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(res, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return {
        "path": str(path),
        "f1_points": {f["name"]: f["forgetting"]["f1_points"] for f in res},
        "contained_points": {f["name"]: f["forgetting"]["contained_points"] for f in res},
    }


def load_results(out: Path) -> dict[str, Any]:
    """The evaluation's results, with the forgetting check's measurements where it ran."""
    results = json.loads((out / "eval" / "results.json").read_text(encoding="utf-8"))
    forget = out / "eval" / "forgetting.json"
    if forget.is_file():
        results["forgetting"] = json.loads(forget.read_text(encoding="utf-8"))
    return results
