"""Content hashes of model folders, cached by (path, size, mtime) so a 90 MB model is hashed once."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from ragtune.hashing import file_sha256
from ragtune.settings import cache_dir

logger = logging.getLogger(__name__)

# Files that do not change what a model computes.
_IGNORED_NAMES = {"README.md", "ragtune.json", "training_args.bin", "trainer_state.json"}
_IGNORED_DIRS = {".git", ".cache", "runs", "__pycache__"}
_lock = threading.Lock()
_memory: dict[str, str] = {}


def _cached_file_hash(path: Path, disk: dict[str, str]) -> tuple[str, bool]:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if key in _memory:
        return _memory[key], False
    if key in disk:
        _memory[key] = disk[key]
        return disk[key], False
    digest = file_sha256(path)
    _memory[key] = disk[key] = digest
    return digest, True


def folder_hash(folder: str | Path) -> str:
    """sha256 over the relative paths and contents of every file that shapes the model's output."""
    folder = Path(folder)
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS and not d.startswith("checkpoint-"))
        for n in sorted(names):
            if n not in _IGNORED_NAMES and not n.startswith("."):
                files.append(Path(root) / n)
    cache_file = cache_dir() / "file_hashes.json"
    with _lock:
        try:
            disk = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            disk = {}
        h = hashlib.sha256()
        dirty = False
        for p in sorted(files, key=lambda p: p.relative_to(folder).as_posix()):
            digest, new = _cached_file_hash(p, disk)
            dirty |= new
            h.update(p.relative_to(folder).as_posix().encode() + b"\0" + digest.encode() + b"\n")
        if dirty:
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(disk))
                os.replace(tmp, cache_file)
            except OSError as e:  # a read-only home only costs a re-hash next time
                logger.debug("could not write hash cache %s: %s", cache_file, e)
    return h.hexdigest()


def fingerprint_id(fp: dict) -> str:
    """Short id over the fields that decide the embedding space (not paths or names)."""
    key = {k: fp.get(k) for k in ("weights_sha256", "adapter_sha256", "dimension", "normalized", "backend")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def same_space(a: dict, b: dict) -> bool:
    return fingerprint_id(a) == fingerprint_id(b)


def describe(fp: dict) -> str:
    adapter = f" + adapter {fp['adapter']}" if fp.get("adapter") else ""
    return f"{fp.get('model')} ({fp.get('model_path')}{adapter}, {fp.get('dimension')}-d, id {fingerprint_id(fp)})"
