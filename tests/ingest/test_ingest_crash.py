"""kill -9 at any moment of an ingest leaves the previous version published and loadable; the lock refuses
a second writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from ingest_helpers import REPO_ROOT, write_tree

from ingest import ingest
from retriever import IndexLocked, KnowledgeIndex, Retriever, current_version, list_versions

# The child ingests, and SIGKILLs itself at the named point (or is SIGKILLed from outside: "external").
DRIVER = textwrap.dedent("""
    import os, signal, sys
    src, idx, point = sys.argv[1:4]
    from ingest import ingest
    from retriever import writer

    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "before_current":       # the version folder is in versions/, CURRENT still names the old one
        writer.publish = die
    elif point == "mid_current":          # the new CURRENT is written to its temporary name, not yet renamed
        real_replace = os.replace
        os.replace = lambda a, b: die() if str(b).endswith("CURRENT") else real_replace(a, b)
    print("ready", flush=True)
    ingest([src], idx, show_progress=False)
    print("finished", flush=True)
""")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    path = tmp_path_factory.mktemp("driver") / "crash_driver.py"
    path.write_text(DRIVER)
    return path


def _many(n: int, tag: str) -> dict[str, str]:
    return {f"doc{i:03d}.txt": f"Record {i} ({tag}): the town of Brightwater keeps ledger page {i} about grain, "
            f"salt and the river trade of the year {800 + i}." for i in range(n)}


# "external": SIGKILL from outside while the new version's files are being written (embedding);
# the other two kill at the exact steps of publishing. Each child costs a model load, so three points.
@pytest.mark.parametrize("point", ["external", "before_current", "mid_current"])
def test_kill_9_mid_ingest_leaves_previous_version(encoder, tmp_path, driver, point):
    src, idx = tmp_path / "src", tmp_path / "idx"
    write_tree(src, _many(40, "old"))
    ingest([src], idx, encoder=encoder, show_progress=False)
    write_tree(src, _many(150 if point == "external" else 40, "new"))  # every document changes
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, str(driver), str(src), str(idx), point], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if point == "external":  # kill from outside while the new version is being written
            deadline = time.time() + 120
            while not any((idx / "tmp").glob("*/chunks.sqlite")) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # into the embedding of 150 new chunks (> 1 s on 2 cores)
            child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL and "finished" not in out
    assert current_version(idx) == "v000001"
    r = Retriever(KnowledgeIndex.open(idx), encoder)
    hit = r.search("ledger page 7 grain", 1)[0]
    assert "(old)" in hit.text and len(r.index) == 40
    # the lock died with the process; the next ingest cleans the leftovers and publishes
    report = ingest([src], idx, encoder=encoder, show_progress=False)
    assert report.published and current_version(idx) == report.version
    assert not any((idx / "tmp").iterdir()) and [p.name for p in idx.glob("CURRENT*")] == ["CURRENT"]
    assert "(new)" in Retriever(KnowledgeIndex.open(idx), encoder).search("ledger page 7 grain", 1)[0].text
    assert sum(v["current"] for v in list_versions(idx)) == 1


def test_concurrent_ingest_is_refused(encoder, corpus, tmp_path):
    idx = tmp_path / "idx"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom retriever import index_lock\n"
         f"with index_lock({str(idx)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexLocked, match=rf"another ingest is writing {idx} \(process {holder.pid}\); wait"):
            ingest([corpus], idx, encoder=encoder, show_progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert ingest([corpus], idx, encoder=encoder, show_progress=False).published
