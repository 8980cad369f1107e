"""A two-fact toy world for the eval tests: documents, an index (real ingest), QA files (fixture `toy`)."""

from __future__ import annotations

import pytest

from ragtune.records import write_jsonl

DOCS_V1 = [
    {"id": "tomas", "title": "Tomas Reed", "text": "Tomas Reed lives in Ashford, where he bakes rye bread."},
    {"id": "mara", "title": "Mara Quill", "text": "Mara Quill founded the town of Brightwater in 1203."},
    {"id": "cats", "title": "Cats", "text": "Three orange cats sleep on the library roof."},
]
DOCS_V2 = [dict(DOCS_V1[0], text="Tomas Reed lives in Greenhollow, where he bakes rye bread.")] + DOCS_V1[1:]
QA = [
    {"id": "q1", "question": "Where does Tomas Reed live?", "answer": "Ashford", "doc_ids": ["tomas"]},
    {
        "id": "q2",
        "question": "Who founded Brightwater?",
        "answer": ["Mara Quill", "Quill"],
        "doc_ids": ["mara"],
    },
    {
        "id": "q3",
        "question": "How many cats sleep on the library roof?",
        "answer": ["three", "3"],
        "doc_ids": ["cats"],
    },
]
FRESH_QA = [
    {
        "id": "f1",
        "question": "Where does Tomas Reed live?",
        "answer": "Greenhollow",
        "stale_answer": "Ashford",
        "doc_ids": ["tomas"],
    }
]
TRAIN = [{"id": f"t{i}", "question": f"What comes after {i}?", "answer": str(i + 1)} for i in range(6)]


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    """{"dir", "docs", "index", "qa", "fresh_qa", "train"}: an index of DOCS_V1 and the QA files."""
    from ingest import ingest

    root = tmp_path_factory.mktemp("toy")
    write_jsonl(root / "docs.jsonl", DOCS_V1)
    write_jsonl(root / "qa.jsonl", QA)
    write_jsonl(root / "fresh.jsonl", FRESH_QA)
    write_jsonl(root / "train.jsonl", TRAIN)
    ingest([root / "docs.jsonl"], root / "index", show_progress=False)
    return {
        "dir": root,
        "docs": root / "docs.jsonl",
        "index": root / "index",
        "qa": root / "qa.jsonl",
        "fresh_qa": root / "fresh.jsonl",
        "train": root / "train.jsonl",
    }
