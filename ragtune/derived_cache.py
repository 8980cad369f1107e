"""The conversions ragtune makes once and keeps in its cache (OpenVINO and ONNX exports of retrievers, GGUF
files, CTranslate2 folders), held to a size limit by evicting the least recently used.

Every fine-tune has a new hash, so each `ragtune run` served on llama.cpp would otherwise leave ~90 MB (its
retriever's export) and ~270 MB (its GGUF) in ~/.cache/ragtune for good. Each entry can be made again from
its source, so evicting one costs only the conversion's time, the next time it is asked for. The materialised
default model (`models/`) and the file-hash table are not conversions and are never evicted.

The limit is $RAGTUNE_CACHE_MAX_GB (default 5, like ccache's); 0 turns eviction off. An entry used within the
last ten minutes is never evicted, whatever the limit: another process may have just looked it up and be
about to load it. (A loaded model is safe anyway: it is in memory, or mmapped from a file whose unlinking
Linux defers until it is closed.)
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from ragtune.errors import RagtuneError
from ragtune.settings import cache_dir

logger = logging.getLogger(__name__)

KINDS = ("openvino", "onnx", "gguf", "ctranslate2")
LIMIT_ENV = "RAGTUNE_CACHE_MAX_GB"
DEFAULT_LIMIT_GB = 5.0
RECENT_S = 600


def entry(kind: str, name: str) -> Path:
    """The cache path of one conversion; marked as used now when it exists (the LRU order is by mtime)."""
    assert kind in KINDS, kind
    path = cache_dir() / kind / name
    if path.exists():
        try:
            os.utime(path)
        except OSError:  # evicted by another process a moment ago: the caller finds it missing and remakes it
            pass
    return path


def limit_bytes() -> int | None:
    """The limit from $RAGTUNE_CACHE_MAX_GB, or None when eviction is off."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    try:
        gb = float(raw) if raw else DEFAULT_LIMIT_GB
    except ValueError:
        raise RagtuneError(
            f"{LIMIT_ENV}={raw!r} is not a number; set it to a size in GB (0: no limit)"
        ) from None
    if gb < 0:
        raise RagtuneError(f"{LIMIT_ENV}={raw!r} is negative; set it to a size in GB (0: no limit)")
    return int(gb * 1024**3) if gb > 0 else None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def entries() -> list[tuple[Path, float, int]]:
    """(path, last use, bytes) of every published conversion, least recently used first. Staging files and
    folders (`*.tmp<pid>`, being written by some process) are not entries."""
    found = []
    for kind in KINDS:
        folder = cache_dir() / kind
        for path in folder.iterdir() if folder.is_dir() else ():
            if ".tmp" in path.name or path.name.startswith("."):
                continue
            try:
                found.append((path, path.stat().st_mtime, _size(path)))
            except OSError:  # removed meanwhile
                continue
    return sorted(found, key=lambda e: e[1])


def prune(keep: Path | None = None) -> list[Path]:
    """Evict least recently used conversions until the cache is within its limit; never `keep` (the entry
    just made) nor one used in the last RECENT_S seconds. Returns what was evicted."""
    limit = limit_bytes()
    if limit is None:
        return []
    found = entries()
    total = sum(size for _, _, size in found)
    evicted, now = [], time.time()
    for path, used, size in found:
        if total <= limit:
            break
        if path == keep or now - used < RECENT_S:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        evicted.append(path)
        total -= size
    if evicted:
        logger.info(
            "cache over %s GB: evicted %d least recently used conversion(s) (%s)",
            f"{limit / 1024**3:g}",
            len(evicted),
            ", ".join(p.name for p in evicted),
        )
    return evicted
