"""kill -9 at any moment of an ingest leaves the previous version published and loadable; the lock refuses
a second writer."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from ingest_helpers import REPO_ROOT, write_tree

from ingest import ingest
from retriever import IndexLocked, KnowledgeIndex, Retriever, current_version, list_versions

# The child ingests, and SIGKILLs itself at the named point, or ("external") says `embedding` when it starts to
# embed the new version's chunks and waits there to be SIGKILLed from outside.
DRIVER = textwrap.dedent("""
    import os, signal, sys, time
    src, idx, point = sys.argv[1:4]
    from ingest import ingest
    from retriever import Encoder, writer

    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "external":             # the new version's folder is half written: wait there for the kill
        def encode(self, *a, **k):
            print("embedding", flush=True)
            time.sleep(600)
        Encoder.encode = encode
    elif point == "before_current":     # the version folder is in versions/, CURRENT still names the old one
        writer.publish = die
    elif point == "mid_current":          # the new CURRENT is written to its temporary name, not yet renamed
        real_replace = os.replace
        os.replace = lambda a, b: die() if str(b).endswith("CURRENT") else real_replace(a, b)
    print("ready", flush=True)
    ingest([src], idx, show_progress=False)
    print("finished", flush=True)
""")


class _Lines:
    """The child's stdout, read by a thread, so that waiting for a line has a deadline."""

    def __init__(self, child: subprocess.Popen):
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(child.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.strip())
        self._queue.put(None)

    def wait_for(self, want: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while want not in self.seen:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"the child did not print {want!r} within {timeout:.0f} s (it printed {self.seen})"
                ) from None
            if line is None:
                raise AssertionError(f"the child ended before printing {want!r} (it printed {self.seen})")
            self.seen.append(line)

    def rest(self, timeout: float) -> list[str]:
        """Every line the child printed (after it ended)."""
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.seen.append(line)
        return self.seen


@pytest.fixture(scope="module")
def driver(module_tmp):
    path = module_tmp("driver") / "crash_driver.py"
    path.write_text(DRIVER)
    return path


def _many(n: int, tag: str) -> dict[str, str]:
    return {
        f"doc{i:03d}.txt": f"Record {i} ({tag}): the town of Brightwater keeps ledger page {i} about grain, "
        f"salt and the river trade of the year {800 + i}."
        for i in range(n)
    }


# "external": SIGKILL from outside while the new version's files are being written (at its embedding);
# the other two kill at the exact steps of publishing. Each child costs a model load, so three points.
@pytest.mark.parametrize("point", ["external", "before_current", "mid_current"])
def test_kill_9_mid_ingest_leaves_previous_version(encoder, tmp_path, driver, point):
    src, idx = tmp_path / "src", tmp_path / "idx"
    write_tree(src, _many(40, "old"))
    ingest([src], idx, encoder=encoder, show_progress=False)
    write_tree(src, _many(40, "new"))  # every document changes
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(driver), str(src), str(idx), point],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = _Lines(child)
    try:
        if point == "external":
            lines.wait_for("embedding", timeout=180)
            assert any((idx / "tmp").glob("*/chunks.sqlite"))  # the new version is half written
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL and "finished" not in lines.rest(timeout=10)
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
        [
            sys.executable,
            "-c",
            (
                "import sys, time\nfrom retriever import index_lock\n"
                f"with index_lock({str(idx)!r}):\n    print('held', flush=True)\n    time.sleep(60)"
            ),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _Lines(holder).wait_for("held", timeout=60)
        with pytest.raises(
            IndexLocked, match=rf"another ingest is writing {idx} \(process {holder.pid}\); wait"
        ):
            ingest([corpus], idx, encoder=encoder, show_progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert ingest([corpus], idx, encoder=encoder, show_progress=False).published
