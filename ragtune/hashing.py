"""Content hashes every stage shares: a file (index files, the default model's GGUF), a set of data files
(`data_hash` in ragtune.json) and a model folder (the retriever's fingerprint, the report's model hash)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

# Files and folders that do not change what a model computes.
_IGNORED_NAMES = {"README.md", "ragtune.json", "training_args.bin", "trainer_state.json"}
_IGNORED_DIRS = {".git", ".cache", "runs", "__pycache__"}
_lock = threading.Lock()
_memory: dict[str, str] = {}


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def data_hash(paths: Sequence[str | Path], chunk: int = 1 << 20) -> str:
    """`sha256:` + the sha256 of the files' bytes, one after the other (ragtune.json's `data_hash`)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return "sha256:" + h.hexdigest()


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
    """sha256 over the relative paths and contents of every file that shapes a model's output (not READMEs,
    ragtune.json, trainer state, checkpoints or dot files).

    Each file's hash is cached by (path, size, mtime) in memory and in the cache folder, so a 90 MB model is
    read once per machine, not once per use."""
    from ragtune.settings import cache_dir

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
