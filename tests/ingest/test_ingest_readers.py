"""Readers: every supported format, BEIR folders, include/exclude, and bad input skipped with a reason."""

from __future__ import annotations

import json
import os

import pytest
from ingest_helpers import make_pdf, write_tree

from ingest import load_documents, read_sources
from ragtune.errors import RagtuneError

HTML = (
    "<html><head><title>Saltmere</title><style>p{color:red}</style></head><body><h1>Harbour</h1>"
    "<p>Saltmere builds <b>long ships</b>.</p><script>var x = 'no';</script><p>Oak comes from the north.</p>"
    "</body></html>"
)


@pytest.mark.parametrize(
    "name,content,doc_id,title,text",
    [
        (
            "a.txt",
            "Plain text.\r\n\r\n\r\n\r\nNext paragraph.",
            "a.txt",
            "",
            "Plain text.\n\nNext paragraph.",
        ),
        ("n/b.md", "Intro line\n\n## Heading Two ##\n\nBody.", "n/b.md", "Heading Two", None),
        (
            "c.html",
            HTML,
            "c.html",
            "Saltmere",
            "Harbour\n\nSaltmere builds long ships.\n\nOak comes from the north.",
        ),
        (
            "d.pdf",
            make_pdf("Brightwater lies on the river Sel.", "River Book"),
            "d.pdf",
            "River Book",
            "Brightwater lies on the river Sel.",
        ),
        ("e.txt", "\ufeffBOM is dropped.", "e.txt", "", "BOM is dropped."),
        ("f.txt", "Windows UTF-16 text.".encode("utf-16"), "f.txt", "", "Windows UTF-16 text."),
    ],
)
def test_each_format_gives_one_document(tmp_path, name, content, doc_id, title, text):
    root = write_tree(tmp_path / "src", {name: content.encode() if isinstance(content, str) else content})
    (part,) = read_sources([root])
    assert part.skipped == []
    (doc,) = part.documents
    assert (doc.id, doc.title, doc.source) == (doc_id, title, name)  # relative to the source root
    if text is not None:
        assert doc.text == text
    assert "no" not in doc.text.split()  # scripts never leak into text


def test_jsonl_and_beir_folders(tmp_path):
    rows = [
        {"id": "a", "text": "Alpha text.", "title": "A", "metadata": {"year": 1}},
        {"_id": 7, "text": "Beir style id.", "title": ""},
    ]
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({"text": "no id"}),
        json.dumps({"id": "e", "text": "  "}),
        json.dumps({"id": "m", "text": "x", "metadata": [1]}),
    ]
    (tmp_path / "docs.jsonl").write_text("\n".join([json.dumps(r) for r in rows] + bad + [""]) + "\n")
    (part,) = read_sources([tmp_path / "docs.jsonl"])
    assert [(d.id, d.title, d.metadata) for d in part.documents] == [("a", "A", {"year": 1}), ("7", "", {})]
    assert part.documents[1].source == "docs.jsonl:2"  # the file's name, not its path
    reasons = [s.reason for s in part.skipped]
    assert [s.path.rsplit(":", 1)[1] for s in part.skipped] == ["3", "4", "5", "6", "7"]
    assert reasons[0].startswith("not valid JSON") and "`id`" in reasons[2] and "empty" in reasons[3]

    beir = write_tree(
        tmp_path / "beir",
        {
            "corpus.jsonl": json.dumps({"_id": "d1", "title": "T", "text": "Corpus text."}) + "\n",
            "queries.jsonl": json.dumps({"_id": "q1", "text": "a query, not a document"}) + "\n",
            "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
        },
    )
    assert [(d.id, d.title) for d in load_documents([beir])] == [("d1", "T")]


def test_include_exclude_and_hidden_files(tmp_path):
    root = write_tree(
        tmp_path / "src",
        {"a.md": "A.", "b.txt": "B.", "drafts/c.md": "C.", ".hidden.md": "H.", ".git/config": "x"},
    )
    ids = lambda **kw: sorted(d.id for p in read_sources([root], **kw) for d in p.documents)
    assert ids() == ["a.md", "b.txt", "drafts/c.md"]
    assert ids(include=["*.md"]) == ["a.md", "drafts/c.md"]
    assert ids(exclude=["drafts"]) == ["a.md", "b.txt"]
    assert ids(include=["*.md"], exclude=["drafts/*"]) == ["a.md"]


def test_bad_files_are_skipped_with_reasons(tmp_path):
    root = write_tree(
        tmp_path / "src",
        {
            "good.txt": "Fine text.",
            "binary.txt": b"\x00\x01\x02ELF",
            "latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1"),
            "empty.md": "  \n\n ",
            "image.png": b"\x89PNG\r\n",
            "broken.pdf": b"%PDF-1.4 garbage",
            "locked.txt": "secret",
            "zdup.jsonl": json.dumps({"id": "good.txt", "text": "clashing id"}) + "\n",
        },
    )
    os.chmod(root / "locked.txt", 0)
    (part,) = read_sources([root])
    assert [d.id for d in part.documents] == ["good.txt"] + (["locked.txt"] if os.geteuid() == 0 else [])
    reasons = {os.path.basename(s.path).split(":")[0]: s.reason for s in part.skipped}
    assert reasons["binary.txt"] == "binary file (NUL bytes)"
    assert reasons["latin1.txt"].startswith("not UTF-8 text")
    assert reasons["empty.md"] == "empty (no text)"
    assert reasons["image.png"].startswith("unsupported file type .png")
    assert reasons["broken.pdf"].startswith("unreadable PDF")
    assert reasons["zdup.jsonl"].startswith("duplicate document id 'good.txt'")
    if os.geteuid() != 0:
        assert reasons["locked.txt"] == "unreadable (permission denied)"


def test_symlinks_and_escaping_paths_are_refused(tmp_path):
    outside = write_tree(tmp_path / "outside", {"secret.txt": "Outside the root."})
    root = write_tree(tmp_path / "src", {"ok.txt": "Inside."})
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(outside, root / "linkdir")
    (part,) = read_sources([root])
    assert [d.id for d in part.documents] == ["ok.txt"]
    assert sorted(s.reason for s in part.skipped) == ["symlink refused", "symlink refused (folder)"]
    os.symlink(root, tmp_path / "alias")
    with pytest.raises(RagtuneError, match="is a symlink; symlinks are refused"):
        read_sources([tmp_path / "alias"])
    with pytest.raises(RagtuneError, match="does not exist"):
        read_sources([tmp_path / "missing"])
