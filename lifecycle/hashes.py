"""What a step's key is made of: the documents' contents, files' and model folders' hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ragtune.hashing import file_sha256, folder_hash


def docs_hash(folder: str | Path) -> str:
    """sha256 over every file's path (relative to `folder`) and content; dot files and folders aside.

    Unlike `folder_hash` (which skips README.md and the like, files that do not change a model), every
    file of the user's documents counts."""
    root = Path(folder)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{rel.as_posix()}\0{file_sha256(p)}\0".encode())
    return h.hexdigest()


def file_hash(path: str | Path) -> str:
    return file_sha256(path)


def model_fingerprint(folder: str | Path) -> str:
    """The model folder's content hash (cached per file by size and mtime, so a rerun reads nothing)."""
    return folder_hash(folder)
