"""A thin layer over llama.cpp's C API (through llama-cpp-python's ctypes bindings): one model, one context
with a KV cache per sequence, batched decoding, LoRA adapters switched per decode call.

Why the C API and not `llama_cpp.Llama`: `Llama` owns one sequence and samples in its own loop; continuous
batching needs many sequences in one `llama_decode` (each token carries its sequence id and position) and
the logits of chosen tokens only. llama.cpp applies adapters per context, not per sequence, so a decode
step runs once per adapter in use (`llama_set_adapters_lora` changes nothing when the set is the same).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragtune.errors import RagtuneError

logger = logging.getLogger(__name__)
INSTALL_HINT = (
    "the llama.cpp backend needs llama-cpp-python, which compiles llama.cpp at install: "
    "`make llamacpp` (see docs/llamacpp.md)"
)


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError):  # OSError: a library built for another CPU or missing its .so
        return False
    return True


def _lib():
    try:
        import llama_cpp
    except (ImportError, OSError) as e:
        raise RagtuneError(INSTALL_HINT) from e
    return llama_cpp


def _quiet() -> None:
    """llama.cpp logs every load detail to stderr; llama-cpp-python passes it through the logger below
    and prints only what reaches that logger's level."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Token:
    """One token of a decode call: `logits` asks for the distribution after it."""

    id: int
    pos: int
    seq: int
    logits: bool


class LlamaEngine:
    """The model, one context of `n_seq` sequences × `ctx_per_seq` positions, and named LoRA adapters."""

    def __init__(
        self,
        gguf: str | Path,
        *,
        n_seq: int,
        ctx_per_seq: int,
        n_batch: int,
        threads: int,
        loras: dict[str, Path] | None = None,
    ):
        lib = self.lib = _lib()
        _quiet()
        lib.llama_backend_init()
        mp = lib.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = lib.llama_model_load_from_file(str(gguf).encode(), mp)
        if not self.model:
            raise RagtuneError(f"llama.cpp could not load {gguf}: is it a GGUF model file?")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(lib.llama_model_n_ctx_train(self.model))
        self.ctx_per_seq = min(ctx_per_seq, self.n_ctx_train)
        cp = lib.llama_context_default_params()
        cp.n_ctx, cp.n_seq_max, cp.kv_unified = self.ctx_per_seq * n_seq, n_seq, False
        cp.n_batch = cp.n_ubatch = n_batch
        cp.n_threads = cp.n_threads_batch = threads
        cp.no_perf = True
        self.ctx = lib.llama_init_from_model(self.model, cp)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise RagtuneError(f"llama.cpp could not create a context of {n_seq} × {self.ctx_per_seq} tokens")
        self.mem = lib.llama_get_memory(self.ctx)
        self.n_batch = n_batch
        self.batch = lib.llama_batch_init(n_batch, 0, 1)
        self.adapters: dict[str, object] = {}
        for name, path in (loras or {}).items():
            ad = lib.llama_adapter_lora_init(self.model, str(path).encode())
            if not ad:
                self.close()
                raise RagtuneError(
                    f"llama.cpp could not load the LoRA adapter {name}={path}: is it a GGUF LoRA made "
                    "for this base model (`ragtune export --gguf-lora`)?"
                )
            self.adapters[name] = ad
        self._current: str | None = None

    def use_adapter(self, name: str | None) -> None:
        """Apply adapter `name` (None: the base alone) to the next decode calls."""
        if name == self._current:
            return
        if name is None:
            rc = self.lib.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            arr = (self.lib.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
            rc = self.lib.llama_set_adapters_lora(self.ctx, arr, 1, (ctypes.c_float * 1)(1.0))
        if rc != 0:
            raise RagtuneError(f"llama.cpp refused the adapter {name!r} (code {rc})")
        self._current = name

    def decode(self, tokens: Sequence[Token]) -> dict[int, np.ndarray]:
        """Run one decode over `tokens` (at most n_batch); {index in tokens: logits [n_vocab]} for the ones
        that asked for logits."""
        b = self.batch
        n = len(tokens)
        if not 0 < n <= self.n_batch:
            raise ValueError(f"a decode call takes 1 to {self.n_batch} tokens, got {n}")
        for i, t in enumerate(tokens):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = t.id, t.pos, 1, t.logits
            b.seq_id[i][0] = t.seq
        b.n_tokens = n
        rc = self.lib.llama_decode(self.ctx, b)
        if rc != 0:
            raise RagtuneError(f"llama_decode failed (code {rc}; 1 means no room left in the KV cache)")
        out = {}
        for i, t in enumerate(tokens):
            if t.logits:
                ptr = self.lib.llama_get_logits_ith(self.ctx, i)
                out[i] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        return out

    def forget(self, seq: int, keep: int = 0) -> None:
        """Free sequence `seq`'s KV cells from position `keep` on (0: all of them, at once)."""
        if not self.lib.llama_memory_seq_rm(self.mem, seq, keep if keep > 0 else -1, -1):
            raise RagtuneError(
                f"llama.cpp could not drop the KV cells of sequence {seq} from position {keep}"
            )

    def close(self) -> None:
        lib = self.lib
        if getattr(self, "batch", None) is not None:
            lib.llama_batch_free(self.batch)
            self.batch = None
        for ad in self.adapters.values():
            lib.llama_adapter_lora_free(ad)
        self.adapters = {}
        if getattr(self, "ctx", None):
            lib.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            lib.llama_model_free(self.model)
            self.model = None
