"""The run's winner: the system the verdict names on the user's questions (when given) or on the synthetic
test split, and everything `ragtune serve --from RUN` needs to serve exactly it (ragtune/winner.py)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from lifecycle.evaluation import USER_SPLIT
from ragtune.records import iter_jsonl
from ragtune.winner import Winner, write_winner


def serve_command(run_dir: Path) -> str:
    return f"ragtune serve --from {shlex.quote(str(run_dir))}"


def choose_winner(results: dict[str, Any], run: Any) -> Winner:
    """Write RUN/winner.json for the verdict's best system and return it."""
    from eval import compute_verdict

    verdict = compute_verdict(results)["splits"]
    split = USER_SPLIT if USER_SPLIT in verdict else "test"
    v = verdict[split]
    spec = results["splits"][split]["systems"][v["best"]]["spec"]
    won_on = {
        "split": split,
        "questions": "yours (--qa)"
        if split == USER_SPLIT
        else ("the given test split" if run.cfg.qa_dir else "the synthetic test split"),
        **{k: v.get(k) for k in ("metric", "n", "best_ci", "runner_up", "vs_runner_up", "distinguishable")},
        "text": v["text"],
    }
    if split == USER_SPLIT and "test" in verdict:
        won_on["synthetic_test_winner"] = verdict["test"]["best"]
        won_on["same_winner_on_synthetic_test"] = verdict["test"]["best"] == v["best"]
    out = Path(run.out)
    winner = Winner(
        run=out.resolve().name,
        system=v["best"],
        model=None if _is_default(spec["model"]) else _rel(spec["model"], out),
        index=_rel(spec.get("index"), out) if spec.get("retrieval") else None,
        index_version=_version(spec) if spec.get("retrieval") else None,
        retriever=_rel(spec.get("retriever"), out) if spec.get("retrieval") else None,
        retrieval=bool(spec.get("retrieval")),
        top_k=int(spec.get("top_k") or 0) if spec.get("retrieval") else 0,
        retrieval_mode=spec.get("retrieval_mode") or "dense",
        fewshot=_shots(results["splits"][split]["systems"][v["best"]], run.train_qa),
        system_prompt=spec.get("system_prompt"),
        won_on=won_on,
        serve_command=serve_command(out),
    )
    write_winner(out, winner)
    return winner


def _rel(path: str | None, out: Path) -> str | None:
    """A path inside the run folder as relative to it; the base model (outside it) stays absolute."""
    if not path:
        return None
    p = Path(path).resolve()
    try:
        return p.relative_to(out.resolve()).as_posix()
    except ValueError:
        return os.fspath(p)


def _is_default(model: str) -> bool:
    from ragtune.models import resolve_generator

    return Path(model).resolve() == resolve_generator("default").resolve()


def _version(spec: dict[str, Any]) -> str | None:
    from retriever import current_version

    return spec.get("index_version") or current_version(spec["index"])


def _shots(system: dict[str, Any], train_qa: Path) -> list[dict[str, str]]:
    """The few-shot turns the system was evaluated with, in order (question -> the training answer)."""
    wanted = system.get("fewshot_questions") or []
    if not wanted:
        return []
    answers = {}
    for _, row in iter_jsonl(train_qa):
        a = row["answer"]
        answers.setdefault(row["question"], a[0] if isinstance(a, list) else a)
    return [{"question": q, "answer": answers[q]} for q in wanted]
