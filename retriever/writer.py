"""VersionWriter: builds the next index version in a temporary folder and publishes it atomically.

Call it while holding `index_lock(index_dir)`. A crash before `publish()` leaves only a folder under
INDEX_DIR/tmp/ (removed by the next writer); CURRENT still names the previous, intact version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.hashing import file_sha256
from ragtune.records import Chunk
from retriever import faiss_index, lexical
from retriever.index import KnowledgeIndex
from retriever.store import ChunkStore
from retriever.versions import (
    FAISS_FILE,
    FORMAT,
    LEXICAL_DIR,
    MANIFEST,
    STORE_FILE,
    TMP,
    VERSIONS,
    fsync_dir,
    next_version_id,
    publish,
    version_dir,
)

logger = logging.getLogger(__name__)


class VersionWriter:
    """Start from `parent` (or from scratch when there is none or `full`), remove documents, add chunks
    with their vectors, publish."""

    def __init__(
        self,
        index_dir: str | Path,
        fingerprint: dict,
        options: faiss_index.IndexOptions,
        parent: KnowledgeIndex | None = None,
        full: bool = False,
    ):
        self.dir = Path(index_dir)
        self.fingerprint = fingerprint
        self.options = options
        self.parent_version = parent.version if parent is not None else None
        parent = None if full else parent
        self.vid = next_version_id(self.dir)
        self.tmp = self.dir / TMP / f"{self.vid}.{os.getpid()}"
        self.tmp.mkdir(parents=True)
        if parent is not None:
            shutil.copyfile(version_dir(parent.dir, parent.version) / STORE_FILE, self.tmp / STORE_FILE)
            self._index = faiss_index.read(version_dir(parent.dir, parent.version) / FAISS_FILE)
            self.next_id = int(parent.manifest.get("next_id", parent.ntotal))
            self.documents = dict(parent.manifest.get("documents", {}))
        else:
            self._index = None
            self.next_id = 0
            self.documents = {}
        self.store = ChunkStore(self.tmp / STORE_FILE, writable=True)
        self._removed: list[int] = []
        self._vecs: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []

    def vectors_of(self, doc_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The parent's stored vectors of each document's chunks, in chunk order (for renamed documents)."""
        if self._index is None:
            return {}
        out = {}
        for d, fids in self.store.chunk_ids_of(list(doc_ids)).items():
            out[d] = np.vstack([self._index.reconstruct(int(i)) for i in fids]).astype(np.float32)
        return out

    def remove_documents(self, doc_ids: Sequence[str]) -> int:
        """Drop these documents and every chunk of theirs; return the number of chunks removed."""
        ids = self.store.remove_documents(list(doc_ids))
        self._removed += ids
        for d in doc_ids:
            self.documents.pop(d, None)
        return len(ids)

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        ids = np.arange(self.next_id, self.next_id + len(chunks), dtype=np.int64)
        self.next_id += len(chunks)
        self.store.add(ids.tolist(), chunks)
        self._vecs.append(np.ascontiguousarray(vectors, dtype=np.float32))
        self._ids.append(ids)

    def put_documents(self, rows: Sequence[tuple[str, str, str, str, str, int, dict]]) -> None:
        """(doc_id, hash, origin, source, title, n_chunks, metadata) per document added or changed."""
        self.store.put_documents(rows)
        for r in rows:
            self.documents[r[0]] = r[1]

    def publish(self, **manifest_fields: Any) -> str:
        """Write the FAISS index and manifest, fsync, move into versions/, then swap CURRENT; return the id."""
        dim = int(self.fingerprint["dimension"])
        vecs = np.vstack(self._vecs) if self._vecs else np.zeros((0, dim), np.float32)
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
        index = faiss_index.update(self._index, self._removed, vecs, ids, dim, self.options)
        faiss_index.write(index, self.tmp / FAISS_FILE)
        self.store.commit()
        n_chunks = self.n_chunks = self.store.check()
        # rebuilt from this version's own chunks: nothing removed or changed can stay findable
        lexical_entry = lexical.build(self.store.lexical_rows(), self.tmp / LEXICAL_DIR)
        self.store.close()
        if n_chunks != index.ntotal:
            raise RuntimeError(f"internal error: {n_chunks} chunks stored but {index.ntotal} vectors indexed")
        names = [FAISS_FILE, STORE_FILE] + sorted(
            f"{LEXICAL_DIR}/{p.name}" for p in (self.tmp / LEXICAL_DIR).iterdir()
        )
        files = {}
        for name in names:
            p = self.tmp / name
            with open(p, "rb") as f:
                os.fsync(f.fileno())
            files[name] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
        fsync_dir(self.tmp / LEXICAL_DIR)
        manifest = {
            "format": FORMAT,
            "version": self.vid,
            "parent": self.parent_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encoder": self.fingerprint,
            "index": {"kind": faiss_index.kind_of(index), "options": self.options.to_dict()},
            "lexical": lexical_entry,
            "next_id": self.next_id,
            "files": files,
            **manifest_fields,
        }
        manifest.setdefault("counts", {})
        manifest["counts"].update(documents=len(self.documents), chunks=n_chunks)
        manifest["documents"] = dict(sorted(self.documents.items()))
        with open(self.tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.tmp)
        final = version_dir(self.dir, self.vid)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.tmp, final)
        fsync_dir(self.dir / VERSIONS)
        publish(self.dir, self.vid)
        return self.vid

    def abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # already closed, or failing: the folder goes anyway
            self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
