"""Hybrid retrieval on a real MiniLM index: identifiers that dense search misses, fusion, the CLI flags."""

from __future__ import annotations

import json

import pytest
from ingest_helpers import write_tree

from ingest import ingest
from retriever import KnowledgeIndex, RetrievalMode, Retriever

# Configuration notes that talk around the same topic; each names one made-up identifier. A question that
# is only the identifier shares word pieces, not meaning, with its note: dense search has little to go on.
NOTES = {
    "retry.md": "Set xq_rbound to stop the storage client after that many failed attempts on a flaky network.",
    "wait.md": "The storage client waits for a reply before it counts a failed attempt; vlk_tmo_ms sets the wait.",
    "pool.md": "Connections of the storage client are pooled; zzp_cap bounds how many stay open at once.",
    "log.md": "Every failed attempt of the storage client is logged with its error; qmf_lvl picks the detail.",
    "cache.md": "Replies are cached for a while so repeated reads skip the network; hhc_ttl sets how long.",
    "backoff.md": "Between failed attempts the client sleeps longer each time; wbo_mult scales each pause.",
}
IDENTIFIERS = {
    "xq_rbound": "retry",
    "vlk_tmo_ms": "wait",
    "zzp_cap": "pool",
    "qmf_lvl": "log",
    "hhc_ttl": "cache",
    "wbo_mult": "backoff",
}


@pytest.fixture(scope="module")
def retr(encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid")
    write_tree(root / "src", NOTES)
    ingest([root / "src"], root / "idx", encoder=encoder, show_progress=False)
    r = Retriever(KnowledgeIndex.open(root / "idx"), encoder)
    yield r
    r.close()


def _top(r: Retriever, query: str, mode: str) -> str:
    return r.search(query, 1, mode)[0].doc_id


def test_identifier_queries_dense_misses_hybrid_finds(retr):
    dense_hits = sum(_top(retr, f"What does {i} do?", "dense") == d for i, d in IDENTIFIERS.items())
    for ident, doc in IDENTIFIERS.items():
        assert _top(retr, f"What does {ident} do?", "hybrid") == doc, ident
        assert _top(retr, ident, "bm25") == doc
    assert dense_hits <= len(IDENTIFIERS) // 2  # dense ranks the notes that talk around it


def test_each_passage_once_and_default_is_hybrid(retr):
    assert retr.kind() == "hybrid"
    for mode in (RetrievalMode("hybrid"), RetrievalMode("hybrid", "weighted", 0.3)):
        hits = retr.search("storage client failed attempts zzp_cap", 6, mode)
        ids = [p.chunk_id for p in hits]
        assert len(ids) == len(set(ids)) == 6 and ids[0].startswith("pool")
        assert [p.score for p in hits] == sorted((p.score for p in hits), reverse=True)


def test_bm25_returns_only_matching_chunks(retr):
    hits = retr.search("zzp_cap", 6, "bm25")
    assert [p.doc_id for p in hits] == ["pool"]
    assert retr.search("words found nowhere", 3, "bm25") == []


def test_search_cli_retrieval_flags(retr):
    from cli_helpers import run_cli

    out = run_cli(
        "search", "vlk_tmo_ms", "--index", str(retr.index.dir), "-k", "2", "--retrieval", "bm25", "--json"
    )
    assert [p["doc_id"] for p in json.loads(out.stdout)] == ["wait"]
    bad = run_cli("search", "x", "--index", str(retr.index.dir), "--fusion-weight", "2", check=False)
    assert bad.returncode != 0 and "fusion weight must lie in [0, 1]" in bad.stderr
