"""An int8 CPU encoder: the model's transformer exported to ONNX locally, dynamically quantised (weights int8),
run by onnxruntime; pooling and normalisation as the sentence-transformers folder says.

Optional: needs `pip install onnx onnxruntime` (no optimum: it would downgrade transformers). The exported
files are cached under $RAGTUNE_CACHE_DIR/onnx/<weights hash>/ and built once per model.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import RagtuneError
from ragtune.hashing import folder_hash
from ragtune.settings import cache_dir

logger = logging.getLogger(__name__)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Weights of the linear layers int8 per output channel; attention products, embeddings and norms stay fp32
# (quantising the embedding Gather and per-tensor scales cost ~0.02 cosine on MiniLM).
RECIPE = "int8-matmul-perchannel-v1"


def _require_onnxruntime():
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: F401
    except ImportError as e:
        raise ImportError("the onnx-int8 encoder backend needs onnxruntime and onnx: "
                          "`pip install onnx onnxruntime`") from e


def _pooling_mode(model_dir: Path) -> str:
    cfgs = sorted(model_dir.glob("*_Pooling/config.json"))
    if not cfgs:
        return "mean"
    cfg = json.loads(cfgs[0].read_text())
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise RagtuneError(f"{model_dir}: the onnx-int8 backend supports mean or CLS pooling only; use backend torch")


def export_int8(model_dir: Path) -> Path:
    """Export (once) and quantise; returns the int8 .onnx path."""
    _require_onnxruntime()
    out = cache_dir() / "onnx" / f"{folder_hash(model_dir)[:24]}-{RECIPE}"
    int8 = out / "model_int8.onnx"
    if int8.is_file():
        return int8
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    out.mkdir(parents=True, exist_ok=True)
    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    bert = st[0].auto_model.eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    sample = st.tokenizer(["a short one", "a somewhat longer example sentence to trace with"], padding=True,
                          return_tensors="pt")
    fp32 = out / f"model.{os.getpid()}.onnx"
    logger.info("exporting %s to ONNX and quantising it to int8 (once)", model_dir)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHidden(bert), tuple(sample[k] for k in _INPUTS), str(fp32), input_names=list(_INPUTS),
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: "batch", 1: "seq"} for k in (*_INPUTS, "last_hidden_state")})
    tmp = out / f"model_int8.{os.getpid()}.onnx"
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], extra_options={"MatMulConstBOnly": True})
    os.replace(tmp, int8)
    fp32.unlink()
    return int8


class Int8Model:
    """The small part of the SentenceTransformer interface that Encoder uses."""

    def __init__(self, model_dir: Path, threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        cfg_path = model_dir / "sentence_bert_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        self.max_seq_length = int(cfg.get("max_seq_length", 256))
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.pooling = _pooling_mode(model_dir)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(export_int8(model_dir)), opts, providers=["CPUExecutionProvider"])
        self._dim = int(self.session.get_outputs()[0].shape[-1]) if isinstance(
            self.session.get_outputs()[0].shape[-1], int) else None
        self._lock = threading.Lock()

    def eval(self) -> Int8Model:
        return self

    def get_embedding_dimension(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["x"]).shape[1])
        return self._dim

    def load_adapter(self, *a, **k) -> None:
        raise RagtuneError("a LoRA adapter needs backend 'torch'")

    def encode(self, texts: Sequence[str], batch_size: int = 64, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts])  # similar lengths together: less padding
        out = np.zeros((len(texts), 0), dtype=np.float32)
        parts = []
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            enc = self.tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                                 max_length=self.max_seq_length, return_tensors="np")
            feeds = {k: enc[k].astype(np.int64) for k in _INPUTS if k in enc}
            if "token_type_ids" not in feeds:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            hidden = self.session.run(None, feeds)[0]
            if self.pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = feeds["attention_mask"][..., None].astype(np.float32)
                vec = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            parts.append((idx, vec.astype(np.float32)))
        if parts:
            out = np.zeros((len(texts), parts[0][1].shape[1]), dtype=np.float32)
            for idx, vec in parts:
                out[idx] = vec
        if normalize_embeddings and len(out):
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out


def load_int8(model_dir: Path) -> Int8Model:
    _require_onnxruntime()
    return Int8Model(Path(model_dir))
