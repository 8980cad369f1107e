"""Fusing the dense and the lexical ranking of one query into one list of chunk ids (each id once).

- rrf: reciprocal rank fusion (Cormack et al. 2009), score = Σ 1 / (RRF_K + rank), rank from 1; it needs
  no score calibration, which is why it is the default.
- weighted: each list's scores min-max normalised to [0, 1] over its candidates, then
  `weight` × dense + (1 − `weight`) × lexical; a chunk missing from one list gets 0 from it.
"""

from __future__ import annotations

import numpy as np

RRF_K = 60  # the constant of the original paper, also Elasticsearch's and OpenSearch's default


def rrf(dense: tuple[np.ndarray, np.ndarray], lexical: tuple[np.ndarray, np.ndarray], k: int):
    fused: dict[int, float] = {}
    for ids, _ in (dense, lexical):
        for rank, i in enumerate(ids.tolist(), 1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
    return _best(fused, k)


def weighted(
    dense: tuple[np.ndarray, np.ndarray], lexical: tuple[np.ndarray, np.ndarray], k: int, weight: float
):
    fused: dict[int, float] = {}
    for (ids, scores), w in ((dense, weight), (lexical, 1.0 - weight)):
        for i, s in zip(ids.tolist(), _minmax(scores).tolist()):
            fused[i] = fused.get(i, 0.0) + w * s
    return _best(fused, k)


def fuse(dense, lexical, k: int, method: str, weight: float) -> tuple[list[int], list[float]]:
    """The k best (ids, fused scores) of two (ids, scores) candidate lists."""
    if method == "rrf":
        return rrf(dense, lexical, k)
    return weighted(dense, lexical, k, weight)


def _minmax(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores
    lo, hi = scores.min(), scores.max()
    return np.ones_like(scores) if hi == lo else (scores - lo) / (hi - lo)


def _best(fused: dict[int, float], k: int) -> tuple[list[int], list[float]]:
    top = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [i for i, _ in top], [s for _, s in top]
