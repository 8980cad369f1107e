"""The real command line: ingest, search --json, index list/rollback/prune, and errors as `error: ...`."""

from __future__ import annotations

import json

from cli_helpers import run_cli
from ingest_helpers import FACTS, write_tree


def test_cli_ingest_search_and_versions(tmp_path):
    src = write_tree(tmp_path / "src", {**FACTS, "junk.bin": b"\x00\x01"})
    idx = str(tmp_path / "idx")
    out = run_cli("ingest", str(src), "--index", idx).stdout
    assert "plan: 5 added, 0 changed, 0 removed, 0 renamed, 0 unchanged" in out
    assert "published version v000001" in out and f"{src / 'junk.bin'}: unsupported file type .bin" in out

    (src / "ships.txt").unlink()
    report = json.loads(run_cli("ingest", str(src), "--index", idx, "--json").stdout)
    assert report["plan"]["removed"] == 1 and report["published"] and report["version"] == "v000002"
    assert report["chunks_embedded"] == 0 and report["skipped"][0]["reason"].startswith(
        "unsupported file type"
    )
    hits = json.loads(run_cli("search", "Who works as a baker?", "--index", idx, "-k", "2", "--json").stdout)
    assert next(h["doc_id"] for h in hits) == "bakers/tomas.md" and len(hits) == 2
    assert set(hits[0]) == {"chunk_id", "doc_id", "text", "score", "title", "source", "start", "end"}
    assert hits[0]["title"] == "Tomas Reed" and hits[0]["score"] > hits[1]["score"]

    listing = run_cli("index", "list", "--index", idx).stdout.splitlines()
    assert [ln[2:].split()[0] for ln in listing] == ["v000001", "v000002"] and listing[1].startswith("*")
    assert "now serves version v000001" in run_cli("index", "rollback", "v000001", "--index", idx).stdout
    assert json.loads(run_cli("index", "list", "--index", idx, "--json").stdout)[0]["current"] is True
    assert "pruned 0 version(s)" in run_cli("index", "prune", "--keep", "1", "--index", idx).stdout


def test_cli_errors_are_one_line_with_the_fix(tmp_path):
    missing = str(tmp_path / "nowhere")
    for args, message in [
        (
            ("search", "q", "--index", missing),
            f"error: no index at {missing}; build one with `ragtune ingest",
        ),
        (("index", "rollback", "v000042", "--index", missing), "error: no index at"),
        (("index", "list", "--index", missing), "error: no index at"),
        (("index", "prune", "--keep", "0", "--index", missing), "error: --keep must be at least 1, got 0"),
    ]:
        proc = run_cli(*args, check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "nowhere").exists()  # a failed command creates nothing
