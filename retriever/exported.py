"""What the exported encoders (OpenVINO, ONNX int8) share: tokenise as sentence-transformers does, run the
transformer somewhere else, then pool and normalise as the model folder says.

An exported encoder covers folders whose modules are Transformer → Pooling (mean or CLS) → optional Normalize,
which is what all-MiniLM-L6-v2, BGE, E5 and GTE ship; `exportable` says whether a folder is one of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import RagtuneError

_KNOWN_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # in the traced module's argument order
_SAMPLE = ["a short one", "a somewhat longer example sentence to trace the model with"]


def pooling_mode(model_dir: Path) -> str:
    cfgs = sorted(model_dir.glob("*_Pooling/config.json"))
    if not cfgs:
        return "mean"
    cfg = json.loads(cfgs[0].read_text())
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise RagtuneError(
        f"{model_dir}: exported encoders support mean or CLS pooling only; use the torch engine"
    )


def exportable(model_dir: Path) -> bool:
    """True when the folder is Transformer → Pooling → (Normalize) with mean or CLS pooling."""
    modules = model_dir / "modules.json"
    if not modules.is_file():
        return False
    kinds = [m.get("type", "") for m in json.loads(modules.read_text())]
    if not kinds or any(k.split(".")[-1] not in {n.split(".")[-1] for n in _KNOWN_MODULES} for k in kinds):
        return False
    try:
        pooling_mode(model_dir)
    except RagtuneError:
        return False
    return True


def trace_module(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The folder's transformer as a torch module returning last_hidden_state, and a sample input for tracing."""
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    inner = st[0].auto_model.eval()
    enc = st.tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    sample = {k: enc[k] for k in INPUT_NAMES if k in enc}

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.m(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    return LastHidden(inner), sample


class PooledEncoder:
    """The small part of the SentenceTransformer interface that Encoder uses; subclasses supply `_hidden`."""

    def __init__(self, model_dir: Path):
        from transformers import AutoTokenizer

        cfg_path = model_dir / "sentence_bert_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        self.max_seq_length = int(cfg.get("max_seq_length", 256))
        self.lower_case = bool(cfg.get("do_lower_case", False))
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.pooling = pooling_mode(model_dir)
        self._dim: int | None = None
        self._lock = threading.Lock()

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """[batch, seq, hidden] float array for the tokenised batch."""
        raise NotImplementedError

    def eval(self) -> PooledEncoder:
        return self

    def get_embedding_dimension(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["x"]).shape[1])
        return self._dim

    def load_adapter(self, *a, **k) -> None:
        raise RagtuneError("a LoRA adapter needs the torch engine; merge it first with `ragtune export`")

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            return hidden[:, 0].astype(np.float32)
        m = mask[..., None].astype(np.float32)
        return ((hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)).astype(np.float32)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
        **_: Any,
    ) -> np.ndarray:
        items = [t.lower() for t in texts] if self.lower_case else list(texts)
        order = np.argsort([-len(t) for t in items], kind="stable")  # similar lengths together: less padding
        out: np.ndarray | None = None
        for i in range(0, len(items), batch_size):
            idx = order[i : i + batch_size]
            enc = self.tokenizer(
                [items[j] for j in idx],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feeds = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
            vec = self._pool(self._hidden(feeds), feeds["attention_mask"])
            if out is None:
                out = np.zeros((len(items), vec.shape[1]), dtype=np.float32)
            out[idx] = vec
        if out is None:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        if normalize_embeddings:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out
