"""What every dataset importer shares: the parsed result, field checks, the seeded split, the atomic write.

An importer turns a public dataset into ragtune documents and QA rows (shared/DESIGN.md "Shared
formats"). Each question carries its *group*, the source it was written from (a SQuAD article, a
PubMedQA abstract, a BEIR query), and all questions of one group land in one split, so no test
question's source is seen in training. A dataset may fix a question's split itself (BEIR's qrels files,
PubMedQA's official test ids); the seeded fractions split the groups it leaves free.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import RecordError, qa_from_dict, write_jsonl

SPLITS = ("train", "validation", "test")
OUTPUT_FILES = ("documents.jsonl", *(f"{s}.jsonl" for s in SPLITS))


@dataclass
class Question:
    row: dict[str, Any]  # the QA row written: {"id", "question", "answer", "doc_ids", "metadata"?}
    group: str  # the source the question was written from; one group, one split
    split: str | None = None  # a split the dataset itself fixes


@dataclass
class Imported:
    documents: list[dict[str, Any]]
    questions: list[Question]
    group_noun: str  # what a group is, for the summary: "articles", "abstracts", "queries"
    notes: list[str] = field(default_factory=list)


def need(obj: Any, key: str, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    """obj[key] if obj is an object holding a `kind` there; else a RagtuneError naming `where` and the field."""
    if not isinstance(obj, dict):
        raise RagtuneError(f"{where}: expected a JSON object with `{key}`, got {type(obj).__name__}")
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        got = "nothing" if key not in obj else repr(value)[:60]
        raise RagtuneError(f"{where}: `{key}` must be {what}, got {got}")
    return value


def load_json(path: Path) -> Any:
    """Parse one JSON file; a missing, non-UTF-8 or malformed file is a RagtuneError naming file and line."""
    if not path.is_file():
        raise RagtuneError(f"{path} does not exist or is not a file")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise RagtuneError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise RagtuneError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None


def document(
    doc_id: str, text: str, title: str = "", metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ragtune document row; `title` and `metadata` only when they say something."""
    row: dict[str, Any] = {"id": doc_id, "text": text}
    if title:
        row["title"] = title
    if metadata:
        row["metadata"] = metadata
    return row


def assign_splits(
    questions: list[Question], validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Rows by split. Free groups are shuffled with `seed` and cut by the fractions; the test fraction
    applies only when the dataset fixes no test split of its own. Rows keep their source order."""
    if (
        not 0 <= validation_fraction < 1
        or not 0 <= test_fraction < 1
        or validation_fraction + test_fraction >= 1
    ):
        raise RagtuneError(
            f"--validation-fraction {validation_fraction} and --test-fraction {test_fraction} must "
            "each be in [0, 1) and leave some sources for training (sum below 1)"
        )
    fixed = {q.group: q.split for q in questions if q.split}
    free = sorted({q.group for q in questions} - set(fixed))
    random.Random(seed).shuffle(free)
    n_test = 0 if "test" in fixed.values() else round(test_fraction * len(free))
    n_val = round(validation_fraction * len(free))
    where = {g: "test" for g in free[:n_test]} | {g: "validation" for g in free[n_test : n_test + n_val]}
    where |= {g: "train" for g in free[n_test + n_val :]} | fixed
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for q in questions:
        out[where[q.group]].append(q.row)
    return out


def shared_test_docs(splits: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Gold documents of test questions that are also gold for a train or validation question."""
    test = {d for r in splits["test"] for d in r["doc_ids"]}
    return test & {d for s in ("train", "validation") for r in splits[s] for d in r["doc_ids"]}


def check_ids(documents: list[dict[str, Any]], questions: list[Question], source: Path) -> None:
    """Ids are unique and every gold doc id names a document; every row is one the QA loader accepts."""
    doc_ids: set[str] = set()
    for d in documents:
        if d["id"] in doc_ids:
            raise RagtuneError(f"{source}: document id {d['id']!r} occurs twice; ids must be unique")
        doc_ids.add(d["id"])
    qa_ids: set[str] = set()
    for q in questions:
        row = q.row
        if row["id"] in qa_ids:
            raise RagtuneError(f"{source}: question id {row['id']!r} occurs twice; ids must be unique")
        qa_ids.add(row["id"])
        missing = [d for d in row["doc_ids"] if d not in doc_ids]
        if missing:
            raise RagtuneError(
                f"{source}: question {row['id']!r} names documents that are not in it: {missing[:3]}"
            )
        try:
            qa_from_dict(row, where=f"{source}: question {row['id']!r}")
        except RecordError as e:
            raise RagtuneError(str(e)) from None


def write_outputs(
    out_dir: Path, documents: list[dict[str, Any]], splits: dict[str, list[dict[str, Any]]]
) -> None:
    """Write the four files to temporary names, then rename each into place: a crash leaves none half-written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = dict(zip(OUTPUT_FILES, (documents, *(splits[s] for s in SPLITS))))
    temps = {name: out_dir / f".{name}.tmp-{os.getpid()}" for name in OUTPUT_FILES}
    try:
        for name, rows in contents.items():
            write_jsonl(temps[name], rows)
        for name, tmp in temps.items():
            os.replace(tmp, out_dir / name)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
