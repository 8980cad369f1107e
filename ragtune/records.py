"""Shared records: Document, Chunk, Passage, QAExample, Prediction (one definition each).

Every stage reads and writes these shapes; see shared/DESIGN.md "Shared formats".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError


class RecordError(RagtuneError, ValueError):
    """A record in an input file is malformed or missing; the message names the file, line and field."""


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    id: str  # "<doc_id>#<n>"
    doc_id: str
    text: str
    start: int  # character span in the document text
    end: int
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """What search returns, what prompts quote and what responses cite."""

    chunk_id: str
    doc_id: str
    text: str
    score: float = 0.0
    title: str = ""
    source: str = ""
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Passage:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    answers: tuple[str, ...]  # accepted answers; the first is the reference answer for training
    doc_ids: tuple[str, ...] = ()
    context: str | None = None
    # freshness questions: the answers that were true before the index was refreshed
    stale_answers: tuple[str, ...] = ()

    @property
    def answer(self) -> str:
        return self.answers[0]


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for every non-blank line; raise RecordError naming the bad line."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(
            f"{path}: no such file; pass an existing .jsonl file"
            + (" (it is a folder)" if path.is_dir() else "")
        )
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(
                    f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove that line"
                ) from None
            if not isinstance(obj, dict):
                raise RecordError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def qa_from_dict(obj: dict[str, Any], where: str = "") -> QAExample:
    """Validate one QA object (`question`, `answer` str or list, optional `id`, `doc_ids`, `context`)."""
    prefix = f"{where}: " if where else ""
    q = obj.get("question")
    if not isinstance(q, str) or not q.strip():
        raise RecordError(f"{prefix}`question` must be a non-empty string")
    answers = _answer_tuple(obj.get("answer", obj.get("answers")), "answer", prefix)
    if not answers or not any(a.strip() for a in answers):
        raise RecordError(f"{prefix}`answer` is empty; every example needs an answer")
    doc_ids = obj.get("doc_ids") or ()
    if not isinstance(doc_ids, (list, tuple)) or not all(isinstance(d, (str, int)) for d in doc_ids):
        raise RecordError(f"{prefix}`doc_ids` must be a list of document ids, got {doc_ids!r}")
    ctx = obj.get("context")
    if ctx is not None and not isinstance(ctx, str):
        raise RecordError(f"{prefix}`context` must be a string, got {type(ctx).__name__}")
    return QAExample(
        id=str(obj.get("id", where or q)),
        question=q,
        answers=answers,
        doc_ids=tuple(str(d) for d in doc_ids),
        context=ctx,
        stale_answers=_answer_tuple(
            obj.get("stale_answer", obj.get("stale_answers", [])), "stale_answer", prefix
        ),
    )


def _answer_tuple(ans: Any, field: str, prefix: str) -> tuple[str, ...]:
    if isinstance(ans, str):
        return (ans,)
    if isinstance(ans, list) and all(isinstance(a, str) for a in ans):
        return tuple(ans)
    raise RecordError(f"{prefix}`{field}` must be a string or a list of strings, got {ans!r}")


def load_qa(path: str | Path) -> list[QAExample]:
    """Load a QA `.jsonl`; ids default to the line number. Raises RecordError naming file:line."""
    out: list[QAExample] = []
    for lineno, obj in iter_jsonl(path):
        obj.setdefault("id", f"line{lineno}")
        out.append(qa_from_dict(obj, where=f"{path}:{lineno}"))
    if not out:
        raise RecordError(f"{path}: no examples; the file is empty")
    return out


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
