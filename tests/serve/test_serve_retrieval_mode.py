"""The chat request's `retrieval_mode` extension, sent through the official openai client's extra_body."""

from __future__ import annotations

import openai
import pytest

Q = [{"role": "user", "content": "Who founded Brightwater?"}]


def _doc_ids(client, model_id, **extra) -> list[str]:
    r = client.chat.completions.create(model=model_id, messages=Q, max_tokens=2, extra_body=extra)
    return [s["doc_id"] for s in r.model_extra["sources"]]


def test_retrieval_mode_per_request(client, model_id):
    dense = _doc_ids(client, model_id, top_k=5, retrieval_mode="dense")
    bm25 = _doc_ids(client, model_id, top_k=5, retrieval_mode="bm25")
    hybrid = _doc_ids(client, model_id, top_k=5, retrieval_mode="hybrid")
    assert len(dense) == 5  # five one-chunk documents: dense ranks them all
    # BM25 finds only documents that share a term with the question (founded, Brightwater)
    assert bm25[0] == "founder" and set(bm25) <= {"founder", "avalon", "river"}
    assert len(hybrid) == len(set(hybrid)) == 5  # found by both, listed once
    assert _doc_ids(client, model_id, top_k=5) == hybrid  # the server's default on an index with BM25


def test_unknown_retrieval_mode_is_a_400(client, model_id):
    with pytest.raises(openai.BadRequestError, match="retrieval_mode"):
        _doc_ids(client, model_id, retrieval_mode="sparse")
