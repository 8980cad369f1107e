"""The demo worlds: deterministic, disjoint, leakage-free splits, and an update set with stale answers."""

from __future__ import annotations

import json

import pytest

from demo import vocab
from demo.general import general_corpus
from demo.world import make_world, write_world
from ragtune.records import load_qa


def test_world_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        write_world(make_world(30, seed=3), out, n_test=40)
    for f in sorted(p.relative_to(a) for p in a.rglob("*.jsonl")):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert make_world(30, seed=4).documents != make_world(30, seed=3).documents


def test_target_and_general_worlds_share_no_names():
    target, general = make_world(200, kind="target"), make_world(2000, kind="general")
    assert not {p.name for p in target.people} & {p.name for p in general.people}
    assert not set(target.towns) & set(general.towns)
    assert all(vocab.world_of(p.name) == "target" for p in target.people)


def test_documents_state_every_fact():
    w = make_world(25)
    for p, d in zip(w.people, w.documents):
        assert d["id"] == p.id and d["title"] == p.name
        assert all(v in d["text"] for v in p.attrs.values())


def test_splits_are_leakage_free(tmp_path):
    paths = write_world(make_world(40), tmp_path, n_test=60, n_validation=30)
    qa = {s: load_qa(paths[s]) for s in ("train", "validation", "test")}
    assert (len(qa["train"]), len(qa["validation"]), len(qa["test"])) == (40 * 4 * 3, 30, 60)
    questions = {s: {q.question for q in rows} for s, rows in qa.items()}
    assert not questions["train"] & questions["test"]
    assert not questions["train"] & questions["validation"]
    assert not questions["validation"] & questions["test"]

    # no test wording is a train wording, for any entity
    def wordings(rows):
        return {
            q.question.replace(make_world(40).people[int(q.doc_ids[0][-4:])].name, "{name}") for q in rows
        }

    assert not wordings(qa["train"]) & wordings(qa["test"])
    # every test fact is taught in training (in other words), with the same answer and gold document
    train_facts = {(q.doc_ids, q.id.split(":")[1]): q.answers for q in qa["train"]}
    for q in qa["test"]:
        assert train_facts[(q.doc_ids, q.id.split(":")[1])] == q.answers


def test_update_changes_facts_and_records_stale_answers(tmp_path):
    paths = write_world(make_world(40), tmp_path, update_fraction=0.2)
    old = {json.loads(line)["id"]: json.loads(line)["text"] for line in paths["documents"].open()}
    new = {json.loads(line)["id"]: json.loads(line)["text"] for line in paths["updated_documents"].open()}
    fresh = load_qa(paths["freshness"])
    assert len(fresh) == 8 and set(old) == set(new)
    changed = {d for d in old if old[d] != new[d]}
    assert changed == {q.doc_ids[0] for q in fresh}
    for q in fresh:
        doc = q.doc_ids[0]
        assert q.answer != q.stale_answers[0]
        assert q.answer in new[doc] and q.stale_answers[0] in old[doc]
        assert q.stale_answers[0] not in new[doc].replace(q.answer, "")


@pytest.mark.parametrize("n_reading,n_closed", [(50, 10), (20, 0)])
def test_general_corpus_uses_the_rag_prompt(tmp_path, n_reading, n_closed):
    _text, chat = general_corpus(
        tmp_path, n_people=60, n_heldout=10, n_reading=n_reading, n_closed_book=n_closed
    )
    chats = [json.loads(line)["messages"] for line in chat.open()]
    assert len(chats) == n_reading + n_closed
    rag = [c for c in chats if "<passage id=1" in c[1]["content"]]
    assert len(rag) == n_reading
    for c in rag:
        assert c[-1]["role"] == "assistant" and c[-1]["content"] in c[1]["content"]
    held = [json.loads(line) for line in (tmp_path / "heldout.jsonl").open()]
    assert len(held) == 10 and held[0]["messages"][-1]["role"] == "user"
