"""The evaluation step: every system on the synthetic test split (a seeded sample within the budget) and,
when given, on the user's own questions; the merged results land in RUN/eval/results.json."""

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


def load_results(out: Path) -> dict[str, Any]:
    return json.loads((out / "eval" / "results.json").read_text(encoding="utf-8"))
