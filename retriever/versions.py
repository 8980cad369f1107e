"""On-disk layout of a knowledge index: its paths, the CURRENT pointer, manifests, publishing, the writer lock.

    INDEX_DIR/CURRENT              the published version id (replaced atomically)
    INDEX_DIR/versions/<id>/       index.faiss, chunks.sqlite, lexical/ (BM25, see retriever/lexical.py),
                                   manifest.json (immutable once published)
    INDEX_DIR/tmp/                 versions being written; leftovers of a crashed ingest are removed
    INDEX_DIR/ingest.lock          held by the one process writing this index

This module imports nothing of the retriever but its errors, so every other module can build on it;
listing, rolling back and pruning versions (which open them) live in retriever/admin.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from retriever.errors import IndexCorrupt, IndexLocked, IndexNotFound

logger = logging.getLogger(__name__)

FORMAT = "ragtune-index/1"
CURRENT = "CURRENT"
VERSIONS = "versions"
TMP = "tmp"
LOCK = "ingest.lock"
MANIFEST = "manifest.json"
FAISS_FILE = "index.faiss"
STORE_FILE = "chunks.sqlite"
LEXICAL_DIR = "lexical"
_VERSION_RE = re.compile(r"^v(\d{6})$")


def rebuild_hint(index_dir: str | Path, sources: list[str] | None = None) -> str:
    src = " ".join(sources) if sources else "SOURCES..."
    return f"ragtune ingest {src} --index {index_dir} --full"


def current_version(index_dir: str | Path) -> str:
    """The published version id: one small file read, cheap enough to poll every second."""
    path = Path(index_dir) / CURRENT
    try:
        vid = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise not_found(index_dir) from None
    except (OSError, UnicodeDecodeError) as e:
        raise IndexCorrupt(
            f"{path} is unreadable ({e}); roll back with `ragtune index rollback VERSION --index "
            f"{index_dir}` or rebuild with `{rebuild_hint(index_dir)}`"
        ) from None
    if not _VERSION_RE.match(vid):
        raise IndexCorrupt(
            f"{path} holds {vid[:40]!r}, not a version id; roll back with `ragtune index rollback "
            f"VERSION --index {index_dir}` or rebuild with `{rebuild_hint(index_dir)}`"
        )
    return vid


def not_found(index_dir: str | Path) -> IndexNotFound:
    d = Path(index_dir)
    if not d.exists():
        return IndexNotFound(f"no index at {d}; build one with `ragtune ingest PATH... --index {d}`")
    if (d / VERSIONS).is_dir():
        return IndexCorrupt(
            f"{d / CURRENT} is missing; publish a version with `ragtune index rollback VERSION "
            f"--index {d}` (see `ragtune index list --index {d}`) or rebuild with "
            f"`{rebuild_hint(d)}`"
        )
    return IndexNotFound(
        f"{d} is not a ragtune index (no {CURRENT} file); build one with "
        f"`ragtune ingest PATH... --index {d}` into an empty or new folder"
    )


def version_dir(index_dir: str | Path, vid: str) -> Path:
    return Path(index_dir) / VERSIONS / vid


def version_ids(index_dir: str | Path) -> list[str]:
    d = Path(index_dir) / VERSIONS
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if _VERSION_RE.match(p.name) and p.is_dir())


def next_version_id(index_dir: str | Path) -> str:
    ids = version_ids(index_dir)
    n = int(_VERSION_RE.match(ids[-1]).group(1)) + 1 if ids else 1
    return f"v{n:06d}"


def read_manifest(vdir: Path, index_dir: str | Path) -> dict:
    path = vdir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorrupt(f"{path} is missing; rebuild with `{rebuild_hint(index_dir)}`") from None
    except (OSError, ValueError) as e:
        raise IndexCorrupt(
            f"{path} is not a readable manifest ({e}); rebuild with `{rebuild_hint(index_dir)}`"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        raise IndexCorrupt(
            f"{path} is not a {FORMAT} manifest (format {fmt!r}); this folder was written by "
            f"something else; rebuild with `{rebuild_hint(index_dir)}`"
        )
    return manifest


def fsync_dir(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(index_dir: str | Path, vid: str) -> None:
    """Point CURRENT at `vid` by an atomic rename: readers see the old or the new version, never a mix."""
    d = Path(index_dir)
    (d / TMP).mkdir(exist_ok=True)
    tmp = d / TMP / f"{CURRENT}.{os.getpid()}"  # same file system as CURRENT; leftovers are cleaned with tmp/
    with open(tmp, "w", encoding="ascii") as f:
        f.write(vid + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / CURRENT)
    fsync_dir(d)
    logger.info("published version %s of %s", vid, d)


@contextlib.contextmanager
def index_lock(index_dir: str | Path) -> Iterator[None]:
    """Hold the index's writer lock; a second writer is refused at once with a clear message."""
    from filelock import FileLock, Timeout

    d = Path(index_dir)
    d.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(d / LOCK), timeout=0)
    owner = d / (LOCK + ".owner")
    try:
        lock.acquire()
    except Timeout:
        who = ""
        with contextlib.suppress(OSError):
            who = f" (process {owner.read_text().strip()})"
        raise IndexLocked(
            f"another ingest is writing {d}{who}; wait for it to finish, then run this again "
            f"(the lock {d / LOCK} is released when that process exits)"
        ) from None
    try:
        owner.write_text(str(os.getpid()))
        _clean_tmp(d)
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def _clean_tmp(d: Path) -> None:
    """Remove half-written versions left by a crashed or killed ingest (we hold the lock, so none is live)."""
    tmp = d / TMP
    if tmp.is_dir():
        for p in tmp.iterdir():
            logger.info("removing %s left by an interrupted ingest", p)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
