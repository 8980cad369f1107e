"""Chunk store: text and metadata of every chunk by its FAISS id, plus one row per document (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from ragtune.records import Chunk, Passage

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,          -- the FAISS id
    chunk_id TEXT NOT NULL UNIQUE,   -- "<doc_id>#<n>"
    doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    n_chunks INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
"""


class ChunkStore:
    """A read-only view (for search) or a writable one (while a new version is built)."""

    def __init__(self, path: str | Path, writable: bool = False):
        self.path = Path(path)
        if writable:
            self.conn = sqlite3.connect(str(self.path), check_same_thread=False)
            self.conn.executescript(SCHEMA)
        else:
            # Published versions never change: immutable=1 skips locking and lets a pruned file stay readable.
            uri = f"file:{self.path}?mode=ro&immutable=1"
            self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def check(self) -> int:
        """Raise sqlite3.DatabaseError unless the file is a chunk store; return the chunk count."""
        with self._lock:
            return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    # --- writing -------------------------------------------------------------------------------
    def add(self, ids: Sequence[int], chunks: Sequence[Chunk]) -> None:
        rows = [
            (
                int(i),
                c.id,
                c.doc_id,
                c.text,
                c.title,
                c.source,
                c.start,
                c.end,
                json.dumps(c.metadata, ensure_ascii=False, default=str),
            )
            for i, c in zip(ids, chunks)
        ]
        with self._lock:
            self.conn.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def put_documents(self, docs: Iterable[tuple[str, str, str, str, str, int, dict]]) -> None:
        rows = [
            (d, h, o, s, t, n, json.dumps(m, ensure_ascii=False, default=str)) for d, h, o, s, t, n, m in docs
        ]
        with self._lock:
            self.conn.executemany("INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?)", rows)

    def remove_documents(self, doc_ids: Sequence[str]) -> list[int]:
        """Delete the documents and their chunks; return the FAISS ids of the removed chunks."""
        removed: list[int] = []
        with self._lock:
            for i in range(0, len(doc_ids), 500):
                part = list(doc_ids[i : i + 500])
                marks = ",".join("?" * len(part))
                removed += [
                    r[0] for r in self.conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", part)
                ]
                self.conn.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", part)
                self.conn.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", part)
        return removed

    def commit(self) -> None:
        with self._lock:
            self.conn.commit()
            self.conn.execute("VACUUM")

    # --- reading -------------------------------------------------------------------------------
    def passages(self, ids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        """Passages for FAISS ids, in the order given (ids not in the store are dropped)."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self.conn.execute(
                f"SELECT id, chunk_id, doc_id, text, title, source, start, end FROM chunks WHERE id IN ({marks})",
                ids,
            ).fetchall()
        by_id = {r[0]: r for r in rows}
        out = []
        for i, s in zip(ids, scores):
            r = by_id.get(i)
            if r is not None:
                out.append(
                    Passage(
                        chunk_id=r[1],
                        doc_id=r[2],
                        text=r[3],
                        score=float(s),
                        title=r[4],
                        source=r[5],
                        start=r[6],
                        end=r[7],
                    )
                )
        return out

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        with self._lock:
            for i in range(0, len(doc_ids), 500):
                part = list(doc_ids[i : i + 500])
                marks = ",".join("?" * len(part))
                for fid, d in self.conn.execute(
                    f"SELECT id, doc_id FROM chunks WHERE doc_id IN ({marks}) ORDER BY id", part
                ):
                    out.setdefault(d, []).append(fid)
        return out

    def documents(self) -> dict[str, dict]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT doc_id, hash, origin, source, title, n_chunks FROM documents"
            ).fetchall()
        return {
            r[0]: {"hash": r[1], "origin": r[2], "source": r[3], "title": r[4], "n_chunks": r[5]}
            for r in rows
        }

    def lexical_rows(self) -> list[tuple[int, str, str]]:
        """(FAISS id, title, text) of every chunk, in id order: what the lexical index is built from."""
        with self._lock:
            return self.conn.execute("SELECT id, title, text FROM chunks ORDER BY id").fetchall()

    def iter_chunks(self, batch: int = 1000):
        """Every stored chunk as a Passage (score 0), in id order; for tuner's data builders."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, chunk_id, doc_id, text, title, source, start, end FROM chunks ORDER BY id"
            ).fetchall()
        for r in rows:
            yield Passage(
                chunk_id=r[1], doc_id=r[2], text=r[3], title=r[4], source=r[5], start=r[6], end=r[7]
            )
