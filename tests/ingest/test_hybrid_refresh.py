"""The lexical part follows the index: refresh leaves no stale hit, rollback, kill -9, old indexes."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ingest_helpers import REPO_ROOT, write_tree

from ingest import ingest
from retriever import KnowledgeIndex, LexicalMissing, Retriever, current_version, rollback

V1 = {
    "keep.txt": "The lighthouse of Saltmere burns whale oil every night.",
    "change.txt": "The old ferry crosses to Orkwick twice a day.",
    "gone.txt": "The mill at Dunmarrow grinds barley for the whole valley.",
}


def _hits(index_dir, encoder, query: str, mode: str, k: int = 5) -> list[str]:
    with KnowledgeIndex.open(index_dir) as ki:
        return [p.doc_id for p in Retriever(ki, encoder).search(query, k, mode)]


def test_refresh_add_change_delete_leaves_no_stale_lexical_hit(encoder, tmp_path):
    src, idx = write_tree(tmp_path / "src", V1), tmp_path / "idx"
    ingest([src], idx, encoder=encoder, show_progress=False)
    assert _hits(idx, encoder, "Orkwick ferry", "bm25")[0] == "change.txt"
    (src / "gone.txt").unlink()
    write_tree(
        src,
        {"change.txt": "The new bridge to Calloway opened in spring.", "new.txt": "Kestrel Vale grows hops."},
    )
    report = ingest([src], idx, encoder=encoder, show_progress=False)
    assert report.counts["added"] == report.counts["changed"] == report.counts["removed"] == 1
    for mode in ("bm25", "hybrid"):  # the old words lead nowhere stale, the new ones are found
        assert "gone.txt" not in _hits(idx, encoder, "Dunmarrow mill barley", mode)
        assert _hits(idx, encoder, "Dunmarrow mill barley Orkwick ferry", "bm25") == []
        assert _hits(idx, encoder, "Calloway bridge", mode)[0] == "change.txt"
        assert _hits(idx, encoder, "Kestrel Vale hops", mode)[0] == "new.txt"
    with KnowledgeIndex.open(idx) as ki:
        assert len(ki.lexical) == ki.ntotal == 3 and set(ki.documents) == {
            "keep.txt",
            "change.txt",
            "new.txt",
        }
    rollback(idx, "v000001")  # both parts come back together
    assert _hits(idx, encoder, "Dunmarrow mill", "bm25")[0] == "gone.txt"
    assert _hits(idx, encoder, "Calloway bridge", "bm25") == []


def _strip_lexical(idx) -> None:
    """Make the current version look like one written before indexes kept a lexical part."""
    vdir = idx / "versions" / current_version(idx)
    m = json.loads((vdir / "manifest.json").read_text())
    m.pop("lexical")
    m["files"] = {k: v for k, v in m["files"].items() if not k.startswith("lexical/")}
    (vdir / "manifest.json").write_text(json.dumps(m))
    shutil.rmtree(vdir / "lexical")


def test_old_index_dense_default_clear_error_then_add_lexical(encoder, tmp_path, caplog):
    from cli_helpers import run_cli

    src, idx = write_tree(tmp_path / "src", V1), tmp_path / "idx"
    ingest([src], idx, encoder=encoder, show_progress=False)
    _strip_lexical(idx)
    with caplog.at_level(logging.WARNING, logger="retriever.modes"):
        assert (
            _hits(idx, encoder, "Orkwick ferry", None)[0] == "change.txt"
        )  # the default falls back to dense
    assert "falls back to dense" in caplog.text and "ragtune index add-lexical" in caplog.text
    with pytest.raises(LexicalMissing, match=r"ragtune index add-lexical --index .*ingest SOURCES"):
        Retriever.open(idx, mode="hybrid")
    bad = run_cli("search", "ferry", "--index", str(idx), "--retrieval", "bm25", check=False)
    assert bad.returncode != 0 and "add-lexical" in bad.stderr
    run_cli("index", "add-lexical", "--index", str(idx))
    with KnowledgeIndex.open(idx) as new, KnowledgeIndex.open(idx, version="v000001") as old:
        assert new.version == "v000002" and new.has_lexical and not old.has_lexical
        same = [new.faiss.reconstruct(i) for i in range(3)], [old.faiss.reconstruct(i) for i in range(3)]
        np.testing.assert_array_equal(*same)  # nothing re-embedded
    assert _hits(idx, encoder, "Orkwick ferry", "hybrid")[0] == "change.txt"


DRIVER = textwrap.dedent("""
    import sys, time
    src, idx = sys.argv[1:3]
    from ingest import ingest
    from retriever import lexical

    def build(*a, **k):                 # the new version's chunks and vectors are written: wait in its BM25 build
        print("lexical", flush=True)
        time.sleep(600)
    lexical.build = build
    ingest([src], idx, show_progress=False)
""")


def test_kill_9_during_rebuild_keeps_last_version_with_both_parts(encoder, tmp_path):
    src, idx = write_tree(tmp_path / "src", V1), tmp_path / "idx"
    ingest([src], idx, encoder=encoder, show_progress=False)
    write_tree(src, {"keep.txt": "The lighthouse of Saltmere now burns paraffin."})
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    with subprocess.Popen(
        [sys.executable, str(driver), str(src), str(idx)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:  # killed whatever it printed; leaving the block reaps it
        said = child.stdout.readline().strip()
        child.send_signal(signal.SIGKILL)
    assert said == "lexical" and child.returncode == -signal.SIGKILL
    assert current_version(idx) == "v000001"
    with KnowledgeIndex.open(idx) as ki:
        assert ki.has_lexical and len(ki.lexical) == ki.ntotal
    assert _hits(idx, encoder, "whale oil lighthouse", "bm25")[0] == "keep.txt"
    assert _hits(idx, encoder, "whale oil lighthouse", "hybrid")[0] == "keep.txt"
    assert _hits(idx, encoder, "paraffin", "bm25") == []
    assert ingest([src], idx, encoder=encoder, show_progress=False).published  # the leftovers are cleaned
    assert _hits(idx, encoder, "paraffin", "bm25")[0] == "keep.txt"
