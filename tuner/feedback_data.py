"""`ragtune feedback export`: the feedback database (ragtune/feedback.py) as training data.

    DIR/sft.jsonl          QA rows from corrections: {"id", "question", "answer": the correction, "doc_ids",
                           "context", "passages", "response_id", "index_version"}; the shared QA format that
                           `tune generator` reads closed-book or as RAFT (gold = documents of the passages
                           that hold the correction, kept in `context` too)
    DIR/preferences.jsonl  pairs for `tune generator --objective dpo`: {"id", "prompt": the messages the model
                           was given (passages included), "chosen", "rejected", "doc_ids", "response_id"};
                           chosen: the correction, else an up-rated answer to the same question; rejected:
                           the down-rated answer
    DIR/*_test.jsonl       with --test-fraction: the rows of a held-out share of the source documents
    DIR/summary.json       what was kept and what was dropped, and why

The last rating of an answer counts (a reader may change their mind). Both files are split by source
document, jointly, like every other dataset (tuner.gen_data.split_by_document).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.feedback import FeedbackRow, open_feedback
from ragtune.records import write_jsonl
from tuner.gen_data import TrainExample, split_by_document

DROP_UP_NO_PAIR = "up-rated, no down-rated answer to the same question to pair with"
DROP_DOWN_NO_CHOSEN = "down-rated without a correction or an up-rated answer to the same question"
DROP_SAME = "correction equals the rejected answer"
DROP_NO_QUESTION = "no question (a raw_prompt request)"
DROP_SUPERSEDED = "a later rating of the same answer replaces it"


@dataclass
class ExportSummary:
    ratings: int = 0
    up: int = 0
    down: int = 0
    corrections: int = 0
    sft: dict[str, int] = field(default_factory=dict)  # {"train": n, "test": n}
    preferences: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> ratings
    files: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        lines = [
            f"{self.ratings} ratings ({self.up} up, {self.down} down, {self.corrections} with a correction)",
            f"  sft.jsonl: {self.sft.get('train', 0)} rows"
            + (f" (+{self.sft['test']} in sft_test.jsonl)" if self.sft.get("test") else ""),
            f"  preferences.jsonl: {self.preferences.get('train', 0)} pairs"
            + (
                f" (+{self.preferences['test']} in preferences_test.jsonl)"
                if self.preferences.get("test")
                else ""
            ),
        ]
        lines += [f"  dropped {n}: {why}" for why, n in sorted(self.dropped.items())]
        return "\n".join(lines)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _gold_doc_ids(row: FeedbackRow, answer: str) -> list[str]:
    """Documents of the passages that hold `answer` (the gold for RAFT), else of every passage shown."""
    want = _norm(answer)
    holding = [p["doc_id"] for p in row.answer.passages if want and want in _norm(p.get("text", ""))]
    every = [p["doc_id"] for p in row.answer.passages]
    return list(dict.fromkeys(holding or every))


def sft_row(row: FeedbackRow) -> dict[str, Any]:
    a = row.answer
    gold = set(_gold_doc_ids(row, row.correction or ""))
    context = "\n\n".join(p["text"] for p in a.passages if p["doc_id"] in gold)
    return {
        "id": f"feedback-{row.id}",
        "question": a.question,
        "answer": row.correction,
        "doc_ids": sorted(gold),
        **({"context": context} if context else {}),
        "passages": a.passages,
        "response_id": a.id,
        "index_version": a.index_version,
    }


def preference_row(rejected: FeedbackRow, chosen: str, source: str) -> dict[str, Any]:
    a = rejected.answer
    return {
        "id": f"feedback-{rejected.id}",
        "prompt": a.prompt_messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": a.answer}],
        "doc_ids": _gold_doc_ids(rejected, chosen),
        "response_id": a.id,
        "chosen_from": source,  # "correction" or the id of the up-rated answer
    }


def build_rows(rows: list[FeedbackRow]) -> tuple[list[dict], list[dict], ExportSummary]:
    """(sft rows, preference rows, summary) from every rating in the database."""
    s = ExportSummary(ratings=len(rows))
    drop: Counter[str] = Counter()
    last: dict[str, FeedbackRow] = {}
    for r in rows:
        s.up += r.rating == "up"
        s.down += r.rating == "down"
        s.corrections += bool(r.correction and r.correction.strip())
        if r.answer.id in last:
            drop[DROP_SUPERSEDED] += 1
        last[r.answer.id] = r
    current = [r for r in last.values() if r.answer.question.strip()]
    drop[DROP_NO_QUESTION] += len(last) - len(current)
    ups: dict[str, list[FeedbackRow]] = {}
    for r in current:
        if r.rating == "up":
            ups.setdefault(_norm(r.answer.question), []).append(r)
    sft, prefs, paired_ups = [], [], set()
    for r in current:
        corr = (r.correction or "").strip()
        if corr:
            sft.append(sft_row(r))
        if r.rating != "down":
            continue
        good = [
            u
            for u in ups.get(_norm(r.answer.question), [])
            if _norm(u.answer.answer) != _norm(r.answer.answer)
        ]
        if corr and _norm(corr) == _norm(r.answer.answer):
            drop[DROP_SAME] += 1
        elif corr:
            prefs.append(preference_row(r, corr, "correction"))
        elif good:
            prefs.append(preference_row(r, good[-1].answer.answer, good[-1].answer.id))
            paired_ups.add(good[-1].id)
        else:
            drop[DROP_DOWN_NO_CHOSEN] += 1
    drop[DROP_UP_NO_PAIR] += sum(
        1 for r in current if r.rating == "up" and not (r.correction or "").strip() and r.id not in paired_ups
    )
    s.dropped = {k: v for k, v in drop.items() if v}
    return sft, prefs, s


def split_rows(
    sft: list[dict], prefs: list[dict], test_fraction: float, seed: int
) -> tuple[tuple[list, list], tuple[list, list]]:
    """((sft train, sft test), (pref train, pref test)): no source document on both sides, both files jointly."""
    shells = [TrainExample(f"s{i}", [], tuple(r["doc_ids"])) for i, r in enumerate(sft)]
    shells += [TrainExample(f"p{i}", [], tuple(r["doc_ids"])) for i, r in enumerate(prefs)]
    _, test = split_by_document(shells, test_fraction, seed)
    held = {e.id for e in test}
    return (
        (
            [r for i, r in enumerate(sft) if f"s{i}" not in held],
            [r for i, r in enumerate(sft) if f"s{i}" in held],
        ),
        (
            [r for i, r in enumerate(prefs) if f"p{i}" not in held],
            [r for i, r in enumerate(prefs) if f"p{i}" in held],
        ),
    )


def export_feedback(
    db: str | Path, out_dir: str | Path, test_fraction: float = 0.0, seed: int = 0
) -> ExportSummary:
    """Write DIR/sft.jsonl, DIR/preferences.jsonl (and their _test files) and DIR/summary.json."""
    from ragtune.errors import RagtuneError

    if not 0.0 <= test_fraction < 1.0:
        raise RagtuneError(f"--test-fraction must be in [0, 1) (got {test_fraction})")
    store = open_feedback(db, must_exist=True)
    try:
        rows = list(store.feedback())
    finally:
        store.close()
    sft, prefs, summary = build_rows(rows)
    (sft_tr, sft_te), (pref_tr, pref_te) = split_rows(sft, prefs, test_fraction, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = {"sft.jsonl": sft_tr, "preferences.jsonl": pref_tr}
    if test_fraction > 0:
        parts.update({"sft_test.jsonl": sft_te, "preferences_test.jsonl": pref_te})
    for name, part in parts.items():
        write_jsonl(out / name, part)
        summary.files[name] = str(out / name)
    summary.sft = {"train": len(sft_tr), "test": len(sft_te)}
    summary.preferences = {"train": len(pref_tr), "test": len(pref_te)}
    summary.files["summary.json"] = str(out / "summary.json")
    (out / "summary.json").write_text(json.dumps(summary.__dict__, indent=2) + "\n", encoding="utf-8")
    return summary
