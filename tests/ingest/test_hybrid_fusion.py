"""Fusion and the modes, without a model: RRF and weighted scores by hand, mode validation, mining order."""

from __future__ import annotations

import numpy as np
import pytest

from ragtune.errors import RagtuneError
from retriever import RetrievalMode, fuse


def _pair(ids, scores):
    return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)


def test_rrf_by_hand():
    dense, lexical = _pair([1, 2, 3], [0.9, 0.8, 0.7]), _pair([3, 4], [12.0, 5.0])
    ids, scores = fuse(dense, lexical, 10, "rrf", 0.5)
    assert ids == [3, 1, 2, 4]  # 3 is in both lists: it appears once, first
    assert scores[0] == pytest.approx(1 / 63 + 1 / 61) and scores[1] == pytest.approx(1 / 61)


def test_weighted_by_hand():
    dense, lexical = _pair([1, 2], [0.9, 0.5]), _pair([2, 3], [10.0, 4.0])
    ids, scores = fuse(dense, lexical, 2, "weighted", 0.25)
    # min-max per list: dense 1 -> 1, 2 -> 0; lexical 2 -> 1, 3 -> 0
    assert ids == [2, 1] and scores == pytest.approx([0.75, 0.25])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sparse"}, "retrieval mode must be one of dense, bm25, hybrid; got 'sparse'"),
        ({"fusion": "max"}, "fusion must be one of rrf, weighted; got 'max'"),
        ({"weight": 1.5}, r"fusion weight must lie in \[0, 1\]"),
    ],
)
def test_bad_mode_names_the_value(kwargs, message):
    with pytest.raises(RagtuneError, match=message):
        RetrievalMode(**kwargs)


def test_mining_order_follows_the_mode():
    from tuner.retriever_data import mining_order

    scores, lexical = np.asarray([0.1, 0.9, 0.5, 0.3]), np.asarray([3, 0])
    assert mining_order(scores, lexical, "dense").tolist() == [1, 2, 3, 0]
    assert mining_order(scores, lexical, "bm25").tolist() == [3, 0, 1, 2]
    hybrid = mining_order(scores, lexical, "hybrid").tolist()
    assert sorted(hybrid) == [0, 1, 2, 3] and hybrid[0] == 3  # row 3: ranked in both lists
