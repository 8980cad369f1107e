"""RAFT construction against a real index: gold kept in exactly a fraction P, distractors never gold, shuffled."""

from __future__ import annotations

from collections import Counter

import pytest
from tuner_world import write_jsonl

from ragtune.artifacts import read_artifact
from ragtune.errors import RagtuneError
from ragtune.prompt import build_messages
from tuner import build_raft_examples, load_generator_data, train_generator


@pytest.fixture(scope="module")
def retriever(world_index):
    from retriever import Retriever

    return Retriever.open(world_index)


@pytest.fixture(scope="module")
def qa(world):
    return load_generator_data(world["qa"])


@pytest.mark.parametrize("k, p_gold", [(3, 0.75), (4, 0.5), (2, 1.0), (3, 0.0)])
def test_gold_fraction_and_distractors(qa, retriever, k, p_gold):
    built = build_raft_examples(qa, retriever, k=k, p_gold=p_gold, seed=1)
    assert [b.id for b in built] == [q.id for q in qa]
    assert sum(b.meta["has_gold"] for b in built) == round(p_gold * len(qa))
    for q, b in zip(qa, built):
        docs = b.meta["passage_doc_ids"]
        assert len(docs) == k
        n_gold = sum(d in q.doc_ids for d in docs)
        assert n_gold == (1 if b.meta["has_gold"] else 0)  # distractors are never from a gold document
        if b.meta["has_gold"]:
            assert q.doc_ids[0] == docs[b.meta["gold_position"] - 1]
        assert len(set(b.meta["passage_chunk_ids"])) == k
        assert b.messages[-1] == {"role": "assistant", "content": q.answer}
        assert b.messages[:-1][-1]["content"].endswith(f"Question: {q.question}")
    if 0 < p_gold and k > 1:
        positions = Counter(b.meta["gold_position"] for b in built if b.meta["has_gold"])
        assert len(positions) > 1  # the gold passage is not always in the same slot


def test_raft_is_seeded_and_renders_through_build_messages(qa, retriever):
    a = build_raft_examples(qa, retriever, k=3, p_gold=0.5, seed=7)
    b = build_raft_examples(qa, retriever, k=3, p_gold=0.5, seed=7)
    c = build_raft_examples(qa, retriever, k=3, p_gold=0.5, seed=8)
    assert [x.messages for x in a] == [x.messages for x in b]
    assert [x.meta["has_gold"] for x in a] != [x.meta["has_gold"] for x in c]
    hits = retriever.search(qa[0].question, 20)
    by_chunk = {p.chunk_id: p for p in hits}
    passages = [by_chunk[cid] for cid in a[0].meta["passage_chunk_ids"]]
    assert a[0].messages[:-1] == build_messages(qa[0].question, passages)


def test_gold_not_retrieved_comes_from_the_index_store(qa, retriever):
    # search only 1 passage deep: most gold passages are not retrieved and must be fetched by document id
    built = build_raft_examples(qa, retriever, k=2, p_gold=1.0, search_k=1, seed=0, quote=True)
    assert all(b.meta["has_gold"] for b in built)
    for q, b in zip(qa, built):
        assert sum(d in q.doc_ids for d in b.meta["passage_doc_ids"]) == 1
        assert b.messages[-1]["content"].startswith(q.answer + '\nQuote: "')
        assert q.answer in b.messages[-1]["content"].split("Quote:")[1]


def test_raft_needs_doc_ids(retriever, tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Where?", "answer": "Selby"}])
    with pytest.raises(RagtuneError, match="RAFT needs question/answer examples with `doc_ids`"):
        build_raft_examples(load_generator_data(path), retriever)


def test_train_raft_end_to_end(tiny_generator, world, world_index, tmp_path):
    out = tmp_path / "raft"
    r = train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(out),
        mode="raft",
        index=str(world_index),
        k=2,
        p_gold=0.75,
        max_steps=2,
        batch_size=4,
        val_fraction=0.25,
        learning_rate=1e-2,
    )
    assert r.mode == "raft" and r.steps == 2
    art = read_artifact(out)
    assert art["mode"] == "raft" and next(iter(art["index_versions"].values()))
    with pytest.raises(RagtuneError, match="needs an index"):
        train_generator(str(tiny_generator), str(world["qa"]), str(tmp_path / "x"), mode="raft")
