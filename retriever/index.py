"""KnowledgeIndex: one published version (FAISS + chunk store + manifest), checked on open."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from ragtune.hashing import file_sha256
from ragtune.records import Passage
from retriever import faiss_index
from retriever.errors import FingerprintMismatch, IndexCorrupt
from retriever.fingerprint import describe, same_space
from retriever.lexical import LexicalIndex
from retriever.store import ChunkStore
from retriever.versions import (
    FAISS_FILE,
    LEXICAL_DIR,
    STORE_FILE,
    current_version,
    read_manifest,
    rebuild_hint,
    version_dir,
)

logger = logging.getLogger(__name__)


class KnowledgeIndex:
    """A read-only index version. Use `KnowledgeIndex.open(index_dir)` for the CURRENT one."""

    def __init__(
        self,
        index_dir: Path,
        version: str,
        manifest: dict,
        index: Any,
        store: ChunkStore,
        lexical: LexicalIndex | None = None,
    ):
        self.dir = index_dir
        self.lexical = lexical  # None: a version built before indexes kept a lexical (BM25) part
        self.version = version
        self.manifest = manifest
        self.faiss = index
        self.store = store
        faiss_index.configure(index, faiss_index.IndexOptions(**manifest["index"]["options"]))

    @classmethod
    def open(cls, index_dir: str | Path, version: str | None = None, verify: bool = True) -> KnowledgeIndex:
        """Open `version` (default: CURRENT); raise IndexNotFound / IndexCorrupt naming the bad file."""
        d = Path(index_dir)
        vid = version or current_version(d)
        vdir = version_dir(d, vid)
        if not vdir.is_dir():
            raise IndexCorrupt(
                f"{d}/CURRENT names version {vid} but {vdir} does not exist; roll back with "
                f"`ragtune index rollback VERSION --index {d}` or rebuild with `{rebuild_hint(d)}`"
            )
        manifest = read_manifest(vdir, d)
        fix = rebuild_hint(d, manifest.get("sources"))
        _check_files(vdir, manifest, fix, verify)
        try:
            index = faiss_index.read(vdir / FAISS_FILE)
        except RuntimeError as e:
            raise IndexCorrupt(
                f"{vdir / FAISS_FILE} is not a readable FAISS index ({str(e).splitlines()[0]}); "
                f"rebuild with `{fix}`"
            ) from None
        store = ChunkStore(vdir / STORE_FILE)
        try:
            n = store.check()
        except sqlite3.DatabaseError as e:
            store.close()
            raise IndexCorrupt(
                f"{vdir / STORE_FILE} is not a readable chunk store ({e}); rebuild with `{fix}`"
            ) from None
        want_n = manifest.get("counts", {}).get("chunks")
        if index.ntotal != n or (want_n is not None and want_n != n):
            store.close()
            raise IndexCorrupt(
                f"{vdir} is inconsistent: {index.ntotal} vectors in {FAISS_FILE}, {n} chunks in "
                f"{STORE_FILE}, {want_n} in the manifest; rebuild with `{fix}`"
            )
        enc = manifest.get("encoder", {})
        if enc.get("dimension") != index.d:
            store.close()
            raise IndexCorrupt(
                f"{vdir / FAISS_FILE} holds {index.d}-d vectors but the manifest's encoder makes "
                f"{enc.get('dimension')}-d ones; rebuild with `{fix}`"
            )
        try:
            lex = _open_lexical(vdir, manifest, n, fix)
        except IndexCorrupt:
            store.close()
            raise
        return cls(d, vid, manifest, index, store, lex)

    # --- properties --------------------------------------------------------------------------
    @property
    def fingerprint(self) -> dict:
        return self.manifest["encoder"]

    @property
    def ntotal(self) -> int:
        return int(self.faiss.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def documents(self) -> dict[str, str]:
        """doc_id → content hash of every document in this version."""
        return dict(self.manifest.get("documents", {}))

    def rebuild_command(self, retriever: str | None = None) -> str:
        cmd = rebuild_hint(self.dir, self.manifest.get("sources"))
        return f"{cmd} --retriever {retriever}" if retriever else cmd

    def check_encoder(self, encoder: Any) -> None:
        """Refuse an encoder whose embedding space differs from the one that built this index."""
        theirs = encoder.fingerprint if hasattr(encoder, "fingerprint") else encoder
        if same_space(self.fingerprint, theirs):
            return
        default = theirs.get("model") == "all-MiniLM-L6-v2" and not theirs.get("adapter")
        fix = self.rebuild_command(None if default else theirs.get("adapter") or theirs.get("model_path"))
        built = self.fingerprint.get("adapter") or self.fingerprint.get("model_path")
        raise FingerprintMismatch(
            f"index {self.dir} (version {self.version}) was built with encoder {describe(self.fingerprint)} but "
            f"the retriever is {describe(theirs)}; rebuild the index for this retriever with `{fix}`, or use "
            f"--retriever {built}"
        )

    # --- search ------------------------------------------------------------------------------
    @property
    def has_lexical(self) -> bool:
        return self.lexical is not None

    def dense_ids(self, vectors: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query vector, the (FAISS ids, inner products) of its k nearest chunks, best first."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        k = max(0, min(int(k), self.ntotal))
        if k == 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(len(vectors))]
        scores, ids = self.faiss.search(vectors, k)
        return [(row_i[row_i >= 0], row_s[row_i >= 0]) for row_s, row_i in zip(scores, ids)]

    def lexical_ids(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query text, the (FAISS ids, BM25 scores) of its k best chunks (the lexical part must exist)."""
        return self.lexical.search(queries, max(0, min(int(k), self.ntotal)))

    def passages_for(self, ids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        return self.store.passages(list(ids), list(scores))

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Passage]]:
        """Top-k passages for each query vector (rows of unit length), best first."""
        return [
            self.passages_for(ids.tolist(), scores.tolist()) for ids, scores in self.dense_ids(vectors, k)
        ]

    def iter_passages(self) -> Iterator[Passage]:
        """Every chunk of this version (score 0), in insertion order."""
        return self.store.iter_chunks()

    def passages_of(self, doc_ids: Sequence[str]) -> dict[str, list[Passage]]:
        """The chunks of each given document, in document order."""
        ids = self.store.chunk_ids_of(list(doc_ids))
        return {d: self.store.passages(fids, [0.0] * len(fids)) for d, fids in ids.items()}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KnowledgeIndex({str(self.dir)!r}, version={self.version!r}, chunks={self.ntotal})"


def _check_files(vdir: Path, manifest: dict, fix: str, verify: bool) -> None:
    """Every file of the version (FAISS, chunk store, lexical part) is there, of its size and sha256."""
    recorded = manifest.get("files", {})
    names = [FAISS_FILE, STORE_FILE] + sorted(n for n in recorded if n.startswith(LEXICAL_DIR + "/"))
    for name in names:
        path = vdir / name
        want = recorded.get(name, {})
        if not path.is_file():
            raise IndexCorrupt(f"{path} is missing; rebuild with `{fix}`")
        if want.get("size") is not None and path.stat().st_size != want["size"]:
            raise IndexCorrupt(
                f"{path} has {path.stat().st_size} bytes, the manifest says {want['size']}; "
                f"the file is truncated or was replaced; rebuild with `{fix}`"
            )
        if verify and want.get("sha256") and file_sha256(path) != want["sha256"]:
            raise IndexCorrupt(
                f"{path} does not match the sha256 in its manifest (corrupted); rebuild with `{fix}`"
            )


def _open_lexical(vdir: Path, manifest: dict, n_chunks: int, fix: str) -> LexicalIndex | None:
    settings = manifest.get("lexical")
    if not settings:
        return None
    try:
        lex = LexicalIndex(vdir / LEXICAL_DIR, settings)
    except (OSError, ValueError) as e:
        raise IndexCorrupt(
            f"{vdir / LEXICAL_DIR} is not a readable lexical index ({e}); rebuild with `{fix}`"
        ) from None
    if len(lex) != n_chunks:
        raise IndexCorrupt(
            f"{vdir} is inconsistent: {len(lex)} chunks in {LEXICAL_DIR}/, {n_chunks} in {STORE_FILE}; "
            f"rebuild with `{fix}`"
        )
    return lex
