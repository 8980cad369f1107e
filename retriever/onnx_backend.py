"""An int8 CPU encoder: the model's transformer exported to ONNX locally, dynamically quantised (weights int8),
run by onnxruntime; pooling and normalisation as the sentence-transformers folder says.

Optional: needs `pip install onnx onnxruntime` (no optimum: it would downgrade transformers). The exported
files are cached under $RAGTUNE_CACHE_DIR/onnx/<weights hash>/ and built once per model.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ragtune.derived_cache import entry, prune
from ragtune.hashing import folder_hash
from retriever.exported import PooledEncoder, trace_module

logger = logging.getLogger(__name__)
# Weights of the linear layers int8 per output channel; attention products, embeddings and norms stay fp32
# (quantising the embedding Gather and per-tensor scales cost ~0.02 cosine on MiniLM).
RECIPE = "int8-matmul-perchannel-v1"


def _require_onnxruntime():
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "the onnx-int8 encoder backend needs onnxruntime and onnx: `pip install onnx onnxruntime`"
        ) from e


def export_int8(model_dir: Path) -> Path:
    """Export (once) and quantise; returns the int8 .onnx path."""
    _require_onnxruntime()
    out = entry("onnx", f"{folder_hash(model_dir)[:24]}-{RECIPE}")
    int8 = out / "model_int8.onnx"
    if int8.is_file():
        return int8
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    module, sample = trace_module(model_dir)
    fp32 = out / f"model.{os.getpid()}.onnx"
    logger.info("exporting %s to ONNX and quantising it to int8 (once)", model_dir)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(sample.values()),
            str(fp32),
            input_names=list(sample),
            output_names=["last_hidden_state"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={k: {0: "batch", 1: "seq"} for k in (*sample, "last_hidden_state")},
        )
    tmp = out / f"model_int8.{os.getpid()}.onnx"
    quantize_dynamic(
        str(fp32),
        str(tmp),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"MatMulConstBOnly": True},
    )
    os.replace(tmp, int8)
    fp32.unlink()
    prune(keep=out)
    return int8


class Int8Model(PooledEncoder):
    def __init__(self, model_dir: Path, threads: int | None = None):
        import onnxruntime as ort

        super().__init__(model_dir)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(export_int8(model_dir)), opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]


def load_int8(model_dir: Path) -> Int8Model:
    _require_onnxruntime()
    return Int8Model(Path(model_dir))
