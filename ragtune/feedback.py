"""The feedback database: what each served answer was, and what its readers said about it.

Written by the server (`ragtune serve --feedback-db PATH`), read by `ragtune feedback export` and the
lifecycle; defined here, like winner.json, so the reader never imports the server (shared/DESIGN.md).

SQLite in WAL mode with `synchronous=FULL`: a write is acknowledged only after its transaction is
committed and fsynced, so a crash or kill -9 loses no acknowledged row (SQLite's own guarantee; a plain
stdlib module, no server to run). The schema is versioned with `PRAGMA user_version`; a database written
by a newer ragtune is refused rather than misread.

    answers(id, created, model, run, system, question, request_messages, prompt_messages, passages,
            index_version, answer)              one row per chat completion, keyed by its `id`
    feedback(id, response_id -> answers.id, created, rating 'up'|'down', correction, note)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError

SCHEMA_VERSION = 1
RATINGS = ("up", "down")
MAX_CORRECTION_CHARS = 4000
MAX_NOTE_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    run TEXT,
    system TEXT,
    question TEXT NOT NULL,
    request_messages TEXT NOT NULL,
    prompt_messages TEXT NOT NULL,
    passages TEXT NOT NULL,
    index_version TEXT,
    answer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id TEXT NOT NULL REFERENCES answers(id),
    created REAL NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    correction TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS feedback_response ON feedback(response_id);
"""


class FeedbackDBError(RagtuneError):
    """The feedback database cannot be opened or is of an unknown schema."""


@dataclass(frozen=True)
class AnswerRecord:
    """One served answer: the question, what the model was shown, and what it said."""

    id: str
    model: str
    question: str
    answer: str
    request_messages: list[dict[str, str]] = field(default_factory=list)
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)  # chunk_id, doc_id, title, text
    index_version: str | None = None
    run: str | None = None
    system: str | None = None
    created: float = 0.0


@dataclass(frozen=True)
class FeedbackRow:
    """One rating of one answer, joined with the answer it rates."""

    id: int
    rating: str
    correction: str | None
    note: str | None
    created: float
    answer: AnswerRecord


class FeedbackStore:
    """One connection to the database, shared by the threads of one process behind a lock (each write is
    one short transaction; SQLite serialises writers anyway). Other processes may read and write it too."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise FeedbackDBError(f"feedback database {self.path} is a folder; pass a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise FeedbackDBError(
                f"cannot open feedback database {self.path} ({e}); pass a new file or a ragtune feedback "
                "database"
            ) from None
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FeedbackDBError(
                f"feedback database {self.path} has schema version {version}, newer than this ragtune's "
                f"{SCHEMA_VERSION}; upgrade ragtune"
            )
        if version < SCHEMA_VERSION:  # 0: a new file (there is no older schema yet); one transaction
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing ------------------------------------------------------------------------------------------
    def add_answer(self, a: AnswerRecord) -> None:
        """Store one served answer; returns once it is committed."""
        row = (
            a.id,
            a.created or time.time(),
            a.model,
            a.run,
            a.system,
            a.question,
            json.dumps(a.request_messages, ensure_ascii=False),
            json.dumps(a.prompt_messages, ensure_ascii=False),
            json.dumps(a.passages, ensure_ascii=False),
            a.index_version,
            a.answer,
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)

    def add_feedback(
        self, response_id: str, rating: str, correction: str | None = None, note: str | None = None
    ) -> int | None:
        """Store one rating of a stored answer; returns its row id once committed, or None when no answer
        has that id (nothing is stored then)."""
        if rating not in RATINGS:
            raise ValueError(f"`rating` must be one of {', '.join(RATINGS)}, got {rating!r}")
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO feedback (response_id, created, rating, correction, note) "
                    "SELECT id, ?, ?, ?, ? FROM answers WHERE id = ?",
                    (time.time(), rating, correction or None, note or None, response_id),
                )
            except sqlite3.IntegrityError:
                return None
            return cur.lastrowid if cur.rowcount == 1 else None

    # --- reading ------------------------------------------------------------------------------------------
    def has_answer(self, response_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM answers WHERE id = ?", (response_id,)).fetchone() is not None
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            answers = self._db.execute("SELECT count(*) FROM answers").fetchone()[0]
            rows = dict(self._db.execute("SELECT rating, count(*) FROM feedback GROUP BY rating").fetchall())
        return {"answers": answers, "up": rows.get("up", 0), "down": rows.get("down", 0)}

    def feedback(self) -> Iterator[FeedbackRow]:
        """Every rating with its answer, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT f.id, f.rating, f.correction, f.note, f.created, a.* FROM feedback f "
                "JOIN answers a ON a.id = f.response_id ORDER BY f.id"
            ).fetchall()
        for fid, rating, correction, note, created, *a in rows:
            yield FeedbackRow(fid, rating, correction, note, created, _answer(a))

    def integrity(self) -> str:
        """`PRAGMA integrity_check`'s verdict: "ok" for an intact file."""
        with self._lock:
            return "; ".join(r[0] for r in self._db.execute("PRAGMA integrity_check").fetchall())


def _answer(a: list[Any]) -> AnswerRecord:
    aid, created, model, run, system, question, req, prompt, passages, version, answer = a
    return AnswerRecord(
        id=aid,
        model=model,
        question=question,
        answer=answer,
        request_messages=json.loads(req),
        prompt_messages=json.loads(prompt),
        passages=json.loads(passages),
        index_version=version,
        run=run,
        system=system,
        created=created,
    )


def open_feedback(path: str | Path, *, must_exist: bool = False) -> FeedbackStore:
    """The store at `path` (created when missing, unless `must_exist`)."""
    if must_exist and not Path(path).is_file():
        raise FeedbackDBError(
            f"feedback database {path} does not exist; start `ragtune serve --feedback-db {path}` and "
            "rate some answers first"
        )
    return FeedbackStore(path)
