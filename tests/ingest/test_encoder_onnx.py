"""The onnx-int8 encoder backend (retriever/onnx_backend.py): the embedded MiniLM exported once, quantised, and
close to the torch encoder's space; its fingerprint names another space; without the `onnx` extra it says what
to install."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from retriever import Encoder

ONNX_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(
    not ONNX_EXTRA, reason="the onnx extra is not installed: pip install 'ragtune[onnx]'"
)

TEXTS = [
    "The capital of Avalon is Brightwater.",
    "Brightwater lies on the river Sel.",
    "Tomas Reed works as a baker in Greenhollow and owns three cats.",
    "Which river does Brightwater lie on?",
]


@pytest.fixture(scope="module")
def int8(cache):
    return Encoder(backend="onnx-int8")


@needs_onnx
def test_int8_vectors_are_close_to_torch(int8, encoder):
    a, b = int8.encode(TEXTS), encoder.encode(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.95  # int8 weights: close, not equal
    # the same nearest text for the question
    assert int(np.argmax(a[:3] @ a[3])) == int(np.argmax(b[:3] @ b[3])) == 1


@needs_onnx
def test_export_is_made_once_and_fingerprinted_as_its_own_space(int8, encoder, cache):
    exported = sorted(cache.glob("onnx/*/model_int8.onnx"))
    assert len(exported) == 1 and not list(cache.glob("onnx/*/model.*.onnx"))  # the fp32 step is removed
    mtime = exported[0].stat().st_mtime_ns
    again = Encoder(backend="onnx-int8")
    assert exported[0].stat().st_mtime_ns == mtime  # reused, not exported again
    assert again.fingerprint == int8.fingerprint and int8.fingerprint["backend"] == "onnx-int8"
    assert int8.fingerprint["id"] != encoder.fingerprint["id"]  # an index built with one refuses the other


def test_without_the_extra_it_names_the_install(monkeypatch):
    from retriever import onnx_backend

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(ImportError, match="pip install onnx onnxruntime"):
        onnx_backend.load_int8(Path("."))
