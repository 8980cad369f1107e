"""The lexical (BM25) part of an index version: built by bm25s from the version's own chunk store.

Why bm25s (measured on SciFact, 12,162 chunks, 2 shared cores; see docs/benchmarks.md "Hybrid retrieval"):
a query takes ~1 ms against ~7 ms for SQLite FTS5's `bm25()` (whose k1/b are fixed), the build ~2 s,
the scores sit in three numpy arrays (44 MB peak while building). It cannot delete entries, so every
version rebuilds its lexical part from all of its chunks when it is published: a chunk removed or changed
by a refresh can never leave a stale lexical hit, and the lexical part of a version is a pure function of
that version's chunk store. The cost is O(chunks) per refresh, small beside embedding the changed ones.

On disk, INDEX_DIR/versions/<id>/lexical/ holds bm25s's files plus `ids.npy` (the FAISS id of each row);
the manifest's `lexical` entry records the tokenizer settings, and `files` their sizes and sha256.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

IDS_FILE = "ids.npy"
SETTINGS = {
    "library": "bm25s",
    "method": "lucene",
    "k1": 1.2,
    "b": 0.75,
    "stemmer": "english",
    "stopwords": "en",
}
_TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s's default: identifiers such as __init__ or snake_case stay whole


def _bm25s():
    try:
        import bm25s
        import Stemmer
    except ImportError as e:
        raise ImportError(
            "the lexical (BM25) index needs bm25s and PyStemmer: pip install bm25s PyStemmer "
            "(both are dependencies of ragtune; reinstall it)"
        ) from e
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on itself: a line per build
    return bm25s, Stemmer


def tokenize(texts: Sequence[str], settings: dict) -> list[list[str]]:
    """Lower-cased word tokens, English stop words dropped, stemmed: the same for chunks and queries."""
    bm25s, Stemmer = _bm25s()
    stemmer = Stemmer.Stemmer(settings["stemmer"]) if settings.get("stemmer") else None
    return bm25s.tokenize(
        list(texts),
        token_pattern=_TOKEN_PATTERN,
        stopwords=settings.get("stopwords"),
        stemmer=stemmer,
        return_ids=False,
        show_progress=False,
    )


def chunk_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def build(rows: Iterable[tuple[int, str, str]], out: Path) -> dict:
    """Write the lexical index of (FAISS id, title, text) rows into folder `out`; return its manifest entry."""
    bm25s, _ = _bm25s()
    t0 = time.perf_counter()
    rows = list(rows)
    out.mkdir(parents=True, exist_ok=True)
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    tokens = tokenize([chunk_text(r[1], r[2]) for r in rows], SETTINGS) if rows else []
    model = bm25s.BM25(method=SETTINGS["method"], k1=SETTINGS["k1"], b=SETTINGS["b"])
    model.index(tokens or [[""]], show_progress=False)  # bm25s refuses an empty corpus: one empty row
    model.save(str(out))
    np.save(out / IDS_FILE, ids)
    seconds = time.perf_counter() - t0
    logger.info("lexical index over %d chunks built in %.2f s", len(ids), seconds)
    return {**SETTINGS, "rows": len(ids), "build_s": round(seconds, 3)}


class LexicalIndex:
    """A loaded lexical part: BM25 scores of every chunk for a query, top-k as (FAISS ids, scores)."""

    def __init__(self, folder: Path, settings: dict):
        bm25s, _ = _bm25s()
        self.settings = settings
        self.model = bm25s.BM25.load(str(folder), mmap=False)
        self.ids = np.load(folder / IDS_FILE)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, the k best chunks that share at least one term with it, best first."""
        out = []
        for toks in tokenize(queries, self.settings):
            known = [t for t in toks if t in self.model.vocab_dict]
            if not known or not len(self.ids) or k < 1:
                out.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
                continue
            scores = self.model.get_scores(known)[: len(self.ids)]
            out.append(_top(scores, self.ids, k))
        return out


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    hit = np.flatnonzero(scores > 0)
    if len(hit) > k:
        hit = hit[np.argpartition(-scores[hit], k - 1)[:k]]
    order = hit[np.lexsort((ids[hit], -scores[hit]))]  # score descending, ties by id: reruns agree
    return ids[order], scores[order].astype(np.float32)
