"""The embedder fingerprint: which fields decide the embedding space, and how a mismatch is described.

The model folder hash it records is ragtune.hashing.folder_hash."""

from __future__ import annotations

import hashlib
import json


def fingerprint_id(fp: dict) -> str:
    """Short id over the fields that decide the embedding space (not paths or names)."""
    key = {k: fp.get(k) for k in ("weights_sha256", "adapter_sha256", "dimension", "normalized", "backend")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def same_space(a: dict, b: dict) -> bool:
    return fingerprint_id(a) == fingerprint_id(b)


def describe(fp: dict) -> str:
    adapter = f" + adapter {fp['adapter']}" if fp.get("adapter") else ""
    return f"{fp.get('model')} ({fp.get('model_path')}{adapter}, {fp.get('dimension')}-d, id {fingerprint_id(fp)})"
