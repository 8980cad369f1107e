"""FAISS indexes with ids that survive removals, inner product: IndexIDMap2 over Flat (default) or HNSW, and
IndexIVFFlat with its own ids and a hash-table direct map (IDMap2 over IVF does not remove correctly).

HNSW cannot remove vectors, so a version that removes chunks from an HNSW index rebuilds it from the kept
vectors; Flat and IVF remove in place.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its INFO lines list every CPU build it tries
import faiss

from ragtune.errors import RagtuneError

logger = logging.getLogger(__name__)

KINDS = ("auto", "flat", "hnsw", "ivf")
AUTO_HNSW_AT = 200_000  # chunks; below this exact search takes < 30 ms per query on 2 cores


@dataclass(frozen=True)
class IndexOptions:
    kind: str = "auto"  # auto | flat | hnsw | ivf ("auto": flat below AUTO_HNSW_AT chunks, HNSW above)
    hnsw_m: int = 32  # HNSW graph degree
    ef_construction: int = 80  # HNSW build-time beam
    ef_search: int = 128  # HNSW search-time beam (recall 0.997 at 100k in FINDINGS)
    nlist: int = 0  # IVF lists; 0 = 4*sqrt(n) clamped to [1, n/39]
    nprobe: int = 32  # IVF lists probed per query

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RagtuneError(f"index kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
            if getattr(self, name) < 1:
                raise RagtuneError(f"`{name}` must be a positive integer, got {getattr(self, name)}")
        if self.nlist < 0:
            raise RagtuneError(f"`nlist` must be >= 0, got {self.nlist}")

    def resolve(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "hnsw" if n >= AUTO_HNSW_AT else "flat"

    def to_dict(self) -> dict:
        return asdict(self)


def build(vectors: np.ndarray, ids: np.ndarray, dim: int, kind: str, opts: IndexOptions) -> faiss.Index:
    """A new index of `kind` holding `vectors` under `ids`."""
    n = len(vectors)
    if kind == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, opts.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = opts.ef_construction
    elif kind == "ivf":
        nlist = opts.nlist or int(4 * math.sqrt(max(n, 1)))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
        quantizer = faiss.IndexFlatIP(dim)
        inner = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        inner.train(vectors if n else np.eye(1, dim, dtype=np.float32))  # nothing yet: one dummy list
        inner.set_direct_map_type(faiss.DirectMap.Hashtable)
        if n:
            inner.add_with_ids(vectors, ids.astype(np.int64))
        return inner
    else:
        raise RagtuneError(f"unknown index kind {kind!r}")
    index = faiss.IndexIDMap2(inner)
    if n:
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index


def _inner(index: faiss.Index) -> faiss.Index:
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index


def kind_of(index: faiss.Index) -> str:
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    return "flat"


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of every entry, read back from the index itself."""
    if isinstance(index, faiss.IndexIVF):
        lists = index.invlists
        ids = np.concatenate(
            [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(index.nlist)]
            or [np.zeros(0, np.int64)]
        ).astype(np.int64)
        vecs = np.vstack([index.reconstruct(int(i)) for i in ids]) if len(ids) else None
    else:
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vecs = _inner(index).reconstruct_n(0, index.ntotal) if len(ids) else None
    if vecs is None:
        return ids, np.zeros((0, index.d), dtype=np.float32)
    return ids, np.ascontiguousarray(vecs, dtype=np.float32)


def update(
    index: faiss.Index | None,
    remove: list[int],
    add_vecs: np.ndarray,
    add_ids: np.ndarray,
    dim: int,
    opts: IndexOptions,
) -> faiss.Index:
    """The next version's index: the parent's minus `remove`, plus the new vectors (rebuilt when needed)."""
    total = (index.ntotal if index is not None else 0) - len(remove) + len(add_vecs)
    kind = opts.resolve(total)
    if index is None or index.ntotal == 0 or kind_of(index) != kind or (kind == "hnsw" and remove):
        ids, vecs = (
            (np.zeros(0, np.int64), np.zeros((0, dim), np.float32)) if index is None else all_vectors(index)
        )
        if len(remove):
            keep = ~np.isin(ids, np.asarray(remove, dtype=np.int64))
            ids, vecs = ids[keep], vecs[keep]
        if len(add_vecs):
            ids, vecs = np.concatenate([ids, add_ids.astype(np.int64)]), np.vstack([vecs, add_vecs])
        logger.info("building a %s index over %d vectors", kind, len(vecs))
        return build(vecs, ids, dim, kind, opts)
    if remove:
        index.remove_ids(np.asarray(remove, dtype=np.int64))
    if len(add_vecs):
        index.add_with_ids(add_vecs, add_ids.astype(np.int64))
    return index


def configure(index: faiss.Index, opts: IndexOptions) -> None:
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = opts.ef_search
    elif isinstance(inner, faiss.IndexIVF):
        inner.nprobe = opts.nprobe


def write(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))
