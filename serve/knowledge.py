"""The served knowledge index and its live refresh.

A background task polls `retriever.current_version(index_dir)` (one small file read) every
`poll_interval` seconds; `/v1/index/reload` triggers the same check at once. A new version (newer, or an
older one after `ragtune index rollback`) is opened in a worker thread, checked against the encoder's
fingerprint, and swapped in by one reference assignment. A request takes a lease on the version it
started with and finishes on it; the old version is closed when its last lease ends. A version whose
encoder fingerprint differs is refused: the old one keeps serving and the refusal is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

from ragtune.errors import RagtuneError

logger = logging.getLogger(__name__)


def public_source(source: str, roots: Sequence[str]) -> str:
    """A passage's source as clients see it: relative to its ingest root, never a path on the server.

    Indexes built before sources were stored relative hold absolute paths; `roots` (the index manifest's
    `sources`, the folders and files given to `ragtune ingest`) turn them into the path under the deepest
    root that holds them, else the file's name."""
    path = PurePath(source)
    if not path.is_absolute():
        return source
    for root in sorted(roots, key=len, reverse=True):
        if path != PurePath(root) and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])/[^\s`'\"(),;]+")


def public_message(message: str, index_dir: Path) -> str:
    """An index error as clients see it: the index folder by its name, any other absolute path by its last
    part (the server's log keeps the full message)."""
    for form in {str(index_dir.resolve()), str(index_dir)}:
        if form not in (".", ""):
            message = message.replace(form, index_dir.resolve().name)
    return _ABSOLUTE_PATH.sub(lambda m: PurePath(m.group()).name or m.group(), message)


class _Served:
    """One open index version with a lease count; closed after retirement once no lease remains."""

    def __init__(self, retriever: Any):
        self.retriever = retriever
        self.leases = 0
        self.retired = False
        self.lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.retriever.version

    def acquire(self) -> None:
        with self.lock:
            self.leases += 1

    def release(self) -> None:
        with self.lock:
            self.leases -= 1
            close = self.retired and self.leases == 0
        if close:
            self._close()

    def retire(self) -> None:
        with self.lock:
            self.retired = True
            close = self.leases == 0
        if close:
            self._close()

    def _close(self) -> None:
        logger.info("closing index version %s (no request uses it any more)", self.version)
        self.retriever.index.close()


class KnowledgeHolder:
    def __init__(
        self,
        index_dir: str | Path,
        retriever: str | Path | None = None,
        poll_interval: float = 2.0,
        on_swap: Callable[[str], None] | None = None,
        on_reload: Callable[[str], None] | None = None,
        mode: Any = None,
    ):
        import retriever as rt

        self.index_dir = Path(index_dir)
        self.poll_interval = poll_interval
        self.on_swap, self.on_reload = on_swap, on_reload
        self.mode = mode  # a retriever.RetrievalMode (None: the default)
        first = rt.Retriever.open(self.index_dir, retriever, mode=mode)
        self.encoder = first.encoder
        self._served = _Served(first)
        self._reload_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.last_refused: dict[str, Any] | None = None  # what clients see: no server paths
        self._last_logged: str | None = None
        if on_swap:
            on_swap(first.version)

    @property
    def version(self) -> str:
        return self._served.version

    @property
    def name(self) -> str:
        """The index folder's name: what clients are told, never its path on the server."""
        return self.index_dir.resolve().name

    @property
    def index(self) -> Any:
        return self._served.retriever.index

    @contextlib.contextmanager
    def lease(self) -> Iterator[Any]:
        """The current version's Retriever, kept open until the block ends (even if swapped meanwhile)."""
        served = self._served
        served.acquire()
        try:
            yield served.retriever
        finally:
            served.release()

    async def reload(self) -> dict[str, Any]:
        """Load the published version if it differs from the served one; never raises for a bad version."""
        import retriever as rt

        async with self._reload_lock:
            old = self._served
            try:
                vid = await asyncio.to_thread(rt.current_version, self.index_dir)
            except RagtuneError as e:  # IndexNotFound / IndexCorrupt: keep serving the old one
                return self._refuse(None, e)
            if vid == old.version:
                return {"changed": False, "version": vid}
            if (
                self.last_refused
                and self.last_refused.get("version") == vid
                and self.last_refused.get("sticky")
            ):
                return {"changed": False, "version": old.version, "error": self.last_refused["error"]}
            t0 = time.perf_counter()
            try:
                new = await asyncio.to_thread(self._open, vid)
            except (rt.FingerprintMismatch, rt.IndexCorrupt, rt.IndexNotFound, rt.LexicalMissing) as e:
                return self._refuse(vid, e, sticky=True)
            except OSError as e:  # e.g. a version pruned while we opened it
                return self._refuse(vid, e)
            self._served = _Served(new)
            old.retire()
            self.last_refused = self._last_logged = None
            logger.info(
                "index swapped %s -> %s (loaded in %.2f s)", old.version, vid, time.perf_counter() - t0
            )
            if self.on_swap:
                self.on_swap(vid)
            if self.on_reload:
                self.on_reload("swapped")
            return {"changed": True, "version": vid, "previous": old.version}

    def _open(self, vid: str) -> Any:
        import retriever as rt

        index = rt.KnowledgeIndex.open(self.index_dir, version=vid)
        try:
            return rt.Retriever(index, self.encoder, self.mode)
        except Exception:
            index.close()
            raise

    def _refuse(self, vid: str | None, err: Exception, sticky: bool = False) -> dict[str, Any]:
        msg = f"{err}"
        if vid is not None:
            msg = f"index version {vid} refused, still serving {self.version}: {err}"
        if self._last_logged != msg:  # the log has the full message, clients the one without paths
            logger.error("%s", msg)
        self._last_logged, msg = msg, public_message(msg, self.index_dir)
        self.last_refused = {"version": vid, "error": msg, "sticky": sticky, "at": time.time()}
        if self.on_reload:
            self.on_reload("refused")
        return {"changed": False, "version": self.version, "error": msg}

    # --- polling --------------------------------------------------------------------------------
    def start_polling(self) -> None:
        if self.poll_interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="ragtune-index-poll")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # a background task must not die silently: log and keep polling
                logger.exception("index poll failed; will retry in %.1f s", self.poll_interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._served.retire()
