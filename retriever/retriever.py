"""Retriever: query text → ranked Passages, from a KnowledgeIndex and the Encoder that built it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from ragtune.records import Passage
from retriever.encoder import Encoder
from retriever.fusion import fuse
from retriever.index import KnowledgeIndex
from retriever.modes import FUSION_DEPTH, RetrievalMode
from retriever.versions import current_version

logger = logging.getLogger(__name__)


class Retriever:
    """Search one index version; `refresh()` swaps to a newer published version in place.

    `mode` (a RetrievalMode, a kind name or None for the default) applies to every search unless a search
    names its own; a passage found by both retrievers of a hybrid search appears once."""

    def __init__(self, index: KnowledgeIndex, encoder: Encoder, mode: RetrievalMode | str | None = None):
        index.check_encoder(encoder)
        self.index = index
        self.encoder = encoder
        self.mode = RetrievalMode.of(mode)
        self.mode.resolve(index.has_lexical, str(index.dir))  # refuse bm25/hybrid on an old index up front
        self._swap = threading.Lock()

    @classmethod
    def open(
        cls,
        index_dir: str | Path,
        retriever: str | Path | None = None,
        version: str | None = None,
        mode: RetrievalMode | str | None = None,
        **encoder_kwargs,
    ) -> Retriever:
        """Open the CURRENT version (or `version`). `retriever=None` uses the encoder recorded in the index when
        that folder exists here (else the embedded default); an explicit retriever must match its fingerprint."""
        index = KnowledgeIndex.open(index_dir, version=version)
        try:
            return cls(index, _encoder_for(index.fingerprint, retriever, **encoder_kwargs), mode)
        except Exception:
            index.close()
            raise

    @property
    def version(self) -> str:
        return self.index.version

    def kind(self, mode: RetrievalMode | str | None = None) -> str:
        """The retrieval kind a search with `mode` (None: this retriever's) runs on the current version."""
        index = self.index
        return self._mode(mode).resolve(index.has_lexical, str(index.dir))

    def search(self, query: str, k: int = 10, mode: RetrievalMode | str | None = None) -> list[Passage]:
        return self.search_batch([query], k, mode)[0]

    def search_batch(
        self, queries: Sequence[str], k: int = 10, mode: RetrievalMode | str | None = None
    ) -> list[list[Passage]]:
        if not queries:
            return []
        index = self.index  # one version for the whole batch, even if refresh() swaps meanwhile
        m = self._mode(mode)
        kind = m.resolve(index.has_lexical, str(index.dir))
        depth = k if kind != "hybrid" else max(k, FUSION_DEPTH)
        dense = index.dense_ids(self.encoder.encode(list(queries)), depth) if kind != "bm25" else None
        lexical = index.lexical_ids(queries, depth) if kind != "dense" else None
        out = []
        for i in range(len(queries)):
            if kind == "hybrid":
                ids, scores = fuse(dense[i], lexical[i], k, m.fusion, m.weight)
            else:
                ids, scores = (dense or lexical)[i]
            out.append(index.passages_for(list(ids), list(scores)))
        return out

    def _mode(self, mode: RetrievalMode | str | None) -> RetrievalMode:
        if mode is None:
            return self.mode
        return mode if isinstance(mode, RetrievalMode) else self.mode.with_kind(mode)

    def refresh(self) -> bool:
        """Load the published version if it changed (checking its fingerprint); return True when swapped.

        The old version is not closed here (searches may still run on it); it closes when garbage-collected.
        Pruning a version that is still open is safe on Linux: its FAISS index is in memory and its SQLite
        file is opened immutable, so it stays readable until closed."""
        vid = current_version(self.index.dir)
        if vid == self.index.version:
            return False
        with self._swap:
            if vid == self.index.version:
                return False
            new = KnowledgeIndex.open(self.index.dir, version=vid)
            try:
                new.check_encoder(self.encoder)
            except Exception:
                new.close()
                raise
            old, self.index = self.index, new
        logger.info("retriever moved from version %s to %s", old.version, vid)
        return True

    def close(self) -> None:
        self.index.close()

    def __repr__(self) -> str:
        return f"Retriever({self.index!r}, {self.encoder!r})"


def _encoder_for(fp: dict, retriever: str | Path | None, **encoder_kwargs) -> Encoder:
    """The encoder to search an index with `fingerprint` fp: `retriever` when given, else the model and adapter
    the index records when those folders exist here (else the embedded default), with its backend."""
    if retriever is not None:
        return Encoder(retriever, **encoder_kwargs)
    model = fp.get("model_path") if fp.get("model_path") and Path(fp["model_path"]).is_dir() else None
    adapter = fp.get("adapter") if fp.get("adapter") and Path(fp["adapter"]).is_dir() else None
    encoder_kwargs.setdefault("backend", fp.get("backend", "torch"))
    return Encoder(model, adapter=adapter, **encoder_kwargs)
