"""Refresh without retraining: the plan for each case, only changed chunks embedded, removed ones never found."""

from __future__ import annotations

import shutil

import pytest
from ingest_helpers import FACTS, write_tree

from ingest import ingest
from retriever import IndexOptions, KnowledgeIndex, Retriever, current_version, list_versions, prune, rollback


def run(encoder, src, idx, **kw):
    return ingest([src], idx, encoder=encoder, show_progress=False, **kw)


def all_doc_ids(r: Retriever) -> set[str]:
    return {p.doc_id for hits in r.search_batch(["Brightwater", "bread", "ships"], k=100) for p in hits}


def _add(src):
    (src / "new.txt").write_text("Oskar Lind keeps bees on the island of Varn.")


def _change(src):
    (src / "mara.txt").write_text("Mara Quill founded Brightwater in the year 990 after the long drought.")


def _delete(src):
    (src / "ships.txt").unlink()


def _rename(src):
    (src / "avalon.txt").rename(src / "capital.txt")


CASES = [  # mutation, expected plan counts, chunks embedded, query, expected top doc (None: nothing changes)
    ("add", _add, {"added": 1, "unchanged": 5}, 1, "Who keeps bees?", "new.txt"),
    ("change", _change, {"changed": 1, "unchanged": 4}, 1, "When was Brightwater founded?", "mara.txt"),
    ("delete", _delete, {"removed": 1, "unchanged": 4}, 0, "Which harbour builds long ships?", None),
    ("rename", _rename, {"renamed": 1, "unchanged": 4}, 0, "What is the capital of Avalon?", "capital.txt"),
    ("unchanged", lambda src: None, {"unchanged": 5}, 0, "Who works as a baker?", "bakers/tomas.md"),
]


@pytest.mark.parametrize("name,mutate,counts,embedded,query,top", CASES, ids=[c[0] for c in CASES])
def test_refresh_plan_for_each_case(encoder, corpus, tmp_path, name, mutate, counts, embedded, query, top):
    idx = tmp_path / "idx"
    first = run(encoder, corpus, idx)
    assert first.version == "v000001" and first.chunks_embedded == 5 and first.counts["added"] == 5
    before = Retriever(KnowledgeIndex.open(idx), encoder).search(query, 1)
    mutate(corpus)
    report = run(encoder, corpus, idx)
    want = {"added": 0, "changed": 0, "removed": 0, "renamed": 0, "unchanged": 0, "kept": 0, **counts}
    assert report.counts == want
    assert report.chunks_embedded == embedded
    assert report.published == (name != "unchanged")
    assert current_version(idx) == ("v000001" if name == "unchanged" else "v000002")
    r = Retriever(KnowledgeIndex.open(idx), encoder)
    hit = r.search(query, 1)[0]
    ids = all_doc_ids(r)
    assert len(r.index) == len(ids) == 5 + (name == "add") - (name == "delete")
    if name == "delete":
        assert "ships.txt" not in ids and hit.doc_id != "ships.txt"
    else:
        assert hit.doc_id == top
    if name == "change":
        assert "990" in hit.text and "812" not in " ".join(p.text for p in r.search("year 812", 10))
    if name == "rename":
        assert "avalon.txt" not in ids and hit.score == pytest.approx(before[0].score, abs=1e-6)
    again = run(encoder, corpus, idx)  # idempotent: a second run embeds nothing and publishes nothing
    assert again.chunks_embedded == 0 and not again.published and again.version == report.version


def test_full_dry_run_and_keep_missing(encoder, corpus, tmp_path):
    idx = tmp_path / "idx"
    run(encoder, corpus, idx)
    (corpus / "ships.txt").unlink()
    _add(corpus)
    dry = run(encoder, corpus, idx, dry_run=True)
    assert (dry.counts["added"], dry.counts["removed"], dry.published) == (1, 1, False)
    assert current_version(idx) == "v000001" and "dry run" in dry.summary()
    kept = run(encoder, corpus, idx, delete_missing=False)
    assert kept.counts == {
        "added": 1,
        "changed": 0,
        "removed": 0,
        "renamed": 0,
        "unchanged": 5 - 1,
        "kept": 1,
    }
    assert "ships.txt" in KnowledgeIndex.open(idx).documents
    full = run(encoder, corpus, idx, full=True)
    assert full.plan.full and full.chunks_embedded == 5 and full.version == "v000003"
    m = KnowledgeIndex.open(idx).manifest
    assert m["parent"] == "v000002" and sorted(m["documents"]) == sorted(
        set(FACTS) - {"ships.txt"} | {"new.txt"}
    )
    assert m["counts"]["documents"] == 5 and m["encoder"]["model"] == "all-MiniLM-L6-v2"
    rechunk = run(encoder, corpus, idx, chunk_size=100, overlap=10)  # new chunker settings: all re-embedded
    assert rechunk.plan.full and rechunk.chunks_embedded == 5
    same = run(encoder, corpus, idx)  # no settings given: the current version's are kept
    assert not same.published and same.chunks_embedded == 0
    assert KnowledgeIndex.open(idx).manifest["chunker"] == {
        "chunk_size": 100,
        "overlap": 10,
        "title_in_embedding": True,
    }


def test_documents_of_other_sources_are_kept(encoder, tmp_path):
    a = write_tree(tmp_path / "a", {"x.txt": "Xavier rides horses."})
    b = write_tree(tmp_path / "b", {"y.txt": "Yara paints boats."})
    run(encoder, a, tmp_path / "idx")
    report = run(encoder, b, tmp_path / "idx")
    assert (report.counts["added"], report.counts["kept"], report.documents) == (1, 1, 2)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_index_kinds_handle_removals(encoder, corpus, tmp_path, kind):
    idx = tmp_path / "idx"
    run(encoder, corpus, idx, index_options=IndexOptions(kind=kind))
    _delete(corpus)
    _change(corpus)
    report = run(encoder, corpus, idx)  # no options: the current version's are kept
    assert (report.chunks_removed, report.chunks_embedded, report.chunks) == (2, 1, 4)
    index = KnowledgeIndex.open(idx)
    assert index.manifest["index"]["kind"] == kind and index.ntotal == 4
    r = Retriever(index, encoder)
    assert "ships.txt" not in all_doc_ids(r)
    assert r.search("Who bakes rye bread?", 1)[0].doc_id == "bakers/ina.md"
    assert "990" in r.search("When was Brightwater founded?", 1)[0].text
    _add(corpus)
    other = "ivf" if kind == "flat" else "flat"  # another kind: rebuilt from the stored vectors
    run(encoder, corpus, idx, index_options=IndexOptions(kind=other))
    r = Retriever(KnowledgeIndex.open(idx), encoder)
    assert r.index.manifest["index"]["kind"] == other and len(r.index) == 5
    assert r.search("Who bakes rye bread?", 1)[0].doc_id == "bakers/ina.md"


def test_rollback_prune_and_hot_swap(encoder, corpus, tmp_path):
    idx = tmp_path / "idx"
    run(encoder, corpus, idx)
    r = Retriever.open(idx)  # the encoder recorded in the index
    _add(corpus)
    run(encoder, corpus, idx)
    _delete(corpus)
    run(encoder, corpus, idx)
    assert [v["version"] for v in list_versions(idx)] == ["v000001", "v000002", "v000003"]
    assert r.version == "v000001" and r.refresh() and r.version == "v000003" and not r.refresh()
    assert r.search("Who keeps bees?", 1)[0].doc_id == "new.txt"
    rollback(idx, "v000001")
    assert current_version(idx) == "v000001" and r.refresh()
    assert "new.txt" not in all_doc_ids(r) and "ships.txt" in all_doc_ids(r)
    assert prune(idx, keep=1) == ["v000002"]  # the newest and the current one stay
    assert [v["version"] for v in list_versions(idx)] == ["v000001", "v000003"]
    assert r.search("Which harbour builds long ships?", 1)[0].doc_id == "ships.txt"
    shutil.rmtree(corpus)
