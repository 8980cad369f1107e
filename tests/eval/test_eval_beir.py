"""`ragtune eval retrieval` on a tiny hand-made BEIR folder, through real ingest and a real index."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from ragtune.records import write_jsonl

LONG = " ".join(f"Filler sentence number {i} talks about weather in the northern valleys." for i in range(40))
DOCS = [
    {
        "_id": "d1",
        "title": "Volcano",
        "text": "The volcano Ardent erupted in 1888 and buried the town of Cindermoor.",
    },
    {"_id": "d2", "title": "Bakery", "text": "Tomas Reed bakes rye bread every morning in Greenhollow."},
    {
        "_id": "d3",
        "title": "Long",
        "text": LONG + "\n\nMara Quill founded the lighthouse guild of Brightwater. "
        "Mara Quill led the lighthouse guild of Brightwater for forty years and kept its lamps burning.",
    },
    {"_id": "d4", "title": "Cats", "text": "Three orange cats sleep on the library roof in Ashford."},
    {"_id": "q9", "title": "Same id", "text": "Which river flows through Selby and feeds the old mill?"},
]
QUERIES = [
    {"_id": "q1", "text": "When did the volcano Ardent erupt and which town did it bury?"},
    {"_id": "q2", "text": "Who founded the lighthouse guild of Brightwater?"},  # the long doc's last chunk
    {"_id": "q3", "text": "Where do the orange cats sleep?"},
    {"_id": "q9", "text": "Which river flows through Selby and feeds the old mill?"},  # same id as a doc
]
QRELS = [("q1", "d1", 1), ("q2", "d3", 1), ("q3", "d4", 1), ("q3", "d2", 1), ("q9", "d2", 1)]


@pytest.fixture(scope="module")
def beir(module_tmp):
    root = module_tmp("beir")
    write_jsonl(root / "corpus.jsonl", DOCS)
    write_jsonl(root / "queries.jsonl", QUERIES)
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\r\n" + "".join(f"{q}\t{d}\t{s}\r\n" for q, d, s in QRELS)
    )
    index = root / "index"
    from ingest import ingest

    report = ingest([root / "corpus.jsonl"], index, chunk_size=64, overlap=0, show_progress=False)
    return root, index, report


def test_beir_metrics_with_chunked_documents(beir):
    from eval import evaluate_beir
    from retriever import KnowledgeIndex

    root, index, _ = beir
    with KnowledgeIndex.open(index) as ki:
        assert ki.ntotal > len(DOCS)  # the long document was split into several chunks
    res = evaluate_beir(root, index, ks=(1, 10, 100))
    pq = res["per_query"]
    assert res["n_queries"] == 4
    # q1: its one relevant document first; q2: the long document, found through its last chunk
    for q in ("q1", "q2"):
        assert pq[q]["ndcg@10"] == 1.0 and pq[q]["mrr@10"] == 1.0 and pq[q]["recall@1"] == 1.0
    # q3: d4 is first; every document is retrieved (5 documents, k=100), so recall@100 is 1 everywhere
    assert pq["q3"]["mrr@10"] == 1.0 and pq["q3"]["recall@1"] == 0.5
    assert all(pq[q]["recall@100"] == 1.0 for q in pq)
    # q9: the document with the query's own id is dropped (BEIR's ignore_identical_ids), d2 is ranked below
    # the other three, so its reciprocal rank is below 1
    assert pq["q9"]["mrr@10"] < 1.0 and pq["q9"]["recall@100"] == 1.0
    for m in ("ndcg@10", "mrr@10", "recall@10"):
        assert res["metrics"][m] == pytest.approx(sum(r[m] for r in pq.values()) / 4)


def test_eval_retrieval_cli_json(beir):
    root, index, _ = beir
    out = run_cli("eval", "retrieval", "--beir", str(root), "--index", str(index), "--json")
    res = json.loads(out.stdout)
    assert set(res["metrics"]) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert res["metrics"]["recall@100"] == 1.0 and res["index_version"]


def test_eval_retrieval_refuses_a_missing_index_and_a_non_beir_folder(beir, tmp_path):
    root, index, _ = beir
    proc = run_cli("eval", "retrieval", "--beir", str(root), "--index", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = run_cli("eval", "retrieval", "--beir", str(tmp_path), "--index", str(index), check=False)
    assert proc.returncode == 2 and "is not a BEIR folder" in proc.stderr
