"""The conversion cache's size limit: least recently used first, never the entry just made nor a recent one."""

from __future__ import annotations

import os
import time

import pytest

from ragtune.derived_cache import LIMIT_ENV, RECENT_S, entries, entry, limit_bytes, prune
from ragtune.errors import RagtuneError

MB = 1024**2
HOUR = 3600


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path))
    return tmp_path


def _put(cache, kind: str, name: str, mb: float, hours_ago: float, as_dir: bool = False):
    path = cache / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path / "weights.bin" if as_dir else path
    if as_dir:
        path.mkdir()
    data.write_bytes(b"\0" * int(mb * MB))
    when = time.time() - hours_ago * HOUR
    os.utime(path, (when, when))
    return path


# (limit in GB, what is left of a: 3 MB 5 h ago, b: 2 MB folder 4 h ago, c: 2 MB 3 h ago, d: 1 MB now)
@pytest.mark.parametrize(
    "limit_gb, left",
    [
        (None, "abcd"),  # the default 5 GB holds all 8 MB
        ("0", "abcd"),  # 0: no limit
        (f"{7 / 1024:.10f}", "bcd"),  # 7 MB: the oldest goes
        (f"{4 / 1024:.10f}", "cd"),  # 4 MB: the two oldest go, whatever their kind or shape
        (f"{1 / 1024**2:.10f}", "d"),  # ~1 KB: all but the one used in the last ten minutes
    ],
)
def test_least_recently_used_go_first(cache, monkeypatch, limit_gb, left):
    if limit_gb is not None:
        monkeypatch.setenv(LIMIT_ENV, limit_gb)
    paths = {
        "a": _put(cache, "gguf", "model-a-f16.gguf", 3, 5),
        "b": _put(cache, "openvino", "b-ov-fp32-v1", 2, 4, as_dir=True),
        "c": _put(cache, "ctranslate2", "c-int8", 2, 3, as_dir=True),
        "d": _put(cache, "onnx", "d-int8", 1, 0, as_dir=True),
    }
    evicted = prune()
    assert "".join(k for k, p in paths.items() if p.exists()) == left
    assert sorted(evicted) == sorted(p for k, p in paths.items() if k not in left)


def test_the_entry_just_made_is_kept_and_a_use_renews_an_entry(cache, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, f"{1 / 1024**2:.10f}")
    old = _put(cache, "gguf", "model-old-f16.gguf", 1, 5)
    used = _put(cache, "gguf", "model-used-f16.gguf", 1, 4)
    new = _put(cache, "gguf", "model-new-f16.gguf", 1, 2)
    assert entry("gguf", used.name) == used  # looked up now: no longer among the least recent
    assert time.time() - used.stat().st_mtime < RECENT_S
    assert prune(keep=new) == [old]
    assert used.exists() and new.exists()


def test_staging_files_and_the_default_model_are_not_entries(cache, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, f"{1 / 1024**2:.10f}")
    staging = _put(cache, "gguf", ".model-x-f16.gguf.tmp123", 1, 5)
    staging_dir = _put(cache, "openvino", "x-ov-fp32-v1.tmp123", 1, 5, as_dir=True)
    model = _put(cache, "models", "SmolLM2-135M-Instruct-b179c9523d0e", 1, 5, as_dir=True)
    assert entries() == [] and prune() == []
    assert staging.exists() and staging_dir.exists() and model.exists()


@pytest.mark.parametrize("raw, problem", [("lots", "is not a number"), ("-1", "is negative")])
def test_a_bad_limit_says_what_to_set(monkeypatch, raw, problem):
    monkeypatch.setenv(LIMIT_ENV, raw)
    with pytest.raises(RagtuneError, match=f"{problem}; set it to a size in GB"):
        limit_bytes()


def test_a_real_gguf_conversion_evicts_an_old_one(cache, monkeypatch, tiny_generator):
    """The llama.cpp backend's conversion of a model folder, made under a limit it alone exceeds."""
    from serve.llamacpp_models import folder_gguf

    monkeypatch.setenv(LIMIT_ENV, f"{1 / 1024**2:.10f}")
    old = _put(cache, "gguf", "model-0123456789abcdef01234567-f16.gguf", 1, 5)
    made = folder_gguf(tiny_generator, "f16")
    assert made.is_file() and made.parent == cache / "gguf" and made.read_bytes()[:4] == b"GGUF"
    assert not old.exists()
    inode = made.stat().st_ino
    assert folder_gguf(tiny_generator, "f16") == made and made.stat().st_ino == inode  # a hit: not remade
