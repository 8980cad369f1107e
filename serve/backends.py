"""Choosing and loading a generation backend, and the in-process generator other stages use.

`auto` picks vLLM when it is installed and a CUDA device is present; on a CPU, llama.cpp when
llama-cpp-python is installed, the model is a GGUF file or a Llama-architecture folder (it has a GGUF or gets
one by conversion) and the CPU has no native bf16; else transformers. Why the bf16 condition (docs/llamacpp.md,
bench/serve.py and bench/engines.py, one machine): with native bf16 the transformers backend prefills a RAG
prompt ~3x faster than llama.cpp's portable AVX2 kernels and serves 16 clients with a third of llama.cpp's p95
latency, though llama.cpp decodes one stream ~3.6x faster; without it torch runs fp32, whose prefill is no
faster than llama.cpp's, so llama.cpp's decode wins. `openai` is never picked automatically (it needs a remote
URL); `ctranslate2` (CPU, the `ct2` extra) only when asked for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragtune import models
from ragtune.errors import RagtuneError
from serve.types import Backend, Completion, Delta, SamplingOptions, backend_failure

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "vllm", "llama.cpp", "transformers", "ctranslate2", "openai")


def resolve_backend(name: str, model: str | Path | None = None) -> str:
    from serve import llamacpp_engine
    from serve.vllm_backend import cuda_available, is_vllm_available

    if name not in BACKENDS:
        raise RagtuneError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name != "auto":
        return name
    if is_vllm_available() and cuda_available():
        return "vllm"
    return auto_cpu_backend(model, llamacpp_engine.available())


def auto_cpu_backend(model: str | Path | None, llamacpp_installed: bool, cpuinfo: str | None = None) -> str:
    """`auto` on a CPU (the module docstring says why): llama.cpp or transformers."""
    from ragtune.hardware import cpu_native_bf16

    if llamacpp_installed and _has_or_gets_gguf(model) and not cpu_native_bf16(cpuinfo):
        return "llama.cpp"
    return "transformers"


def _has_or_gets_gguf(model: str | Path | None) -> bool:
    if model is None or models.is_default(model):
        return True
    path = Path(model)
    if path.is_file():
        return path.suffix == ".gguf"
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    import json

    return (json.loads(cfg.read_text(encoding="utf-8")).get("architectures") or [""])[0] == "LlamaForCausalLM"


def served_names(backend: object) -> list[str]:
    """The LoRA adapters a backend serves besides its base model, by name (none for most backends)."""
    return list(getattr(backend, "adapters", []) or [])


def check_model_dir(model: str | Path | None, kind: str) -> None:
    if kind == "llama.cpp" and model is not None and Path(model).is_file():
        if Path(model).suffix != ".gguf":
            raise RagtuneError(f"--model {model}: the llama.cpp backend takes a .gguf file or a model folder")
        return
    if kind != "openai":  # a remote server holds its own model
        models.check_model_dir(model, "--model", default_ok=True)


def load_backend(
    kind: str,
    model: str | Path | None,
    *,
    model_id: str | None = None,
    max_batch_size: int = 16,
    batch_window_ms: float = 10.0,
    on_batch: Callable[[int], None] | None = None,
    openai_base_url: str | None = None,
    openai_api_key: str | None = None,
    vllm_options: dict[str, Any] | None = None,
    compute_type: str | None = None,
    llamacpp_options: dict[str, Any] | None = None,
    prefill_precision: str = "auto",
    cpu_kernels: bool = True,
    prefill_chunk_tokens: int = 256,
    weight_precision: str = "auto",
    prefix_cache_mb: float = 512,
) -> Backend:
    kind = resolve_backend(kind, model)
    check_model_dir(model, kind)
    if kind == "llama.cpp":
        from serve.llamacpp_backend import LlamaCppBackend

        return LlamaCppBackend(
            model or "default",
            max_batch_size=max_batch_size,
            batch_window_ms=batch_window_ms,
            model_id=model_id,
            on_batch=on_batch,
            reuse_prefixes=prefix_cache_mb > 0,
            **(llamacpp_options or {}),
        )
    if kind == "transformers":
        from serve.hf_backend import TransformersBackend

        return TransformersBackend(
            model,
            max_batch_size=max_batch_size,
            batch_window_ms=batch_window_ms,
            model_id=model_id,
            on_batch=on_batch,
            cpu_kernels=cpu_kernels,
            prefill_precision=prefill_precision,
            prefill_chunk_tokens=prefill_chunk_tokens,
            weight_precision=weight_precision,
            prefix_cache_mb=prefix_cache_mb,
        )
    if kind == "ctranslate2":
        from serve.ct2_backend import CTranslate2Backend

        return CTranslate2Backend(
            model,
            compute_type=compute_type,
            max_batch_size=max_batch_size,
            batch_window_ms=batch_window_ms,
            model_id=model_id,
            on_batch=on_batch,
        )
    if kind == "vllm":
        from serve.vllm_backend import VLLMBackend

        return VLLMBackend(model, model_id=model_id, **(vllm_options or {}))
    from serve.openai_backend import OpenAIBackend

    return OpenAIBackend(openai_base_url or "", openai_api_key, model, model_id=model_id)


class Generator:
    """Synchronous generation from chat messages (no retrieval): `generate(list_of_message_lists)`."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def tokenizer(self) -> Any:
        return getattr(self.backend, "tokenizer", None)

    def generate(
        self,
        messages: Sequence[Sequence[dict[str, str]]],
        max_tokens: int = 64,
        stop: Sequence[str] | str | None = None,
        seed: int = 0,
        temperature: float = 0.0,
    ) -> list[Completion]:
        """One Completion per message list, in order; greedy when temperature is 0."""
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        opts = SamplingOptions(max_tokens=max_tokens, stop=stops, seed=seed, temperature=temperature)
        prepared = [self.backend.prepare(m) for m in messages]
        if hasattr(self.backend, "generate_prepared"):
            return self.backend.generate_prepared([p.prompt_ids for p in prepared], opts)
        return self._run(self._all(prepared, opts))

    async def _all(self, prepared, opts: SamplingOptions) -> list[Completion]:
        return list(await asyncio.gather(*(self._one(p, opts) for p in prepared)))

    async def _one(self, prepared, opts: SamplingOptions) -> Completion:
        parts, last = [], Delta()
        async for d in self.backend.stream(prepared, opts):
            if d.error:
                raise backend_failure(self.backend.kind, d.error)
            parts.append(d.text)
            last = d
        n_prompt = prepared.prompt_tokens if prepared.prompt_tokens is not None else (last.prompt_tokens or 0)
        return Completion("".join(parts), n_prompt, last.completion_tokens, last.finish_reason or "stop")

    def _run(self, coro) -> Any:
        # Async backends keep loop-bound clients: run them on one private loop in a daemon thread.
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="ragtune-generator", daemon=True).start()
            start = getattr(self.backend, "start", None)
            if start is not None:
                asyncio.run_coroutine_threadsafe(start(), self._loop).result()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.backend.aclose(), self._loop).result(60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None


def load_generator(model_dir: str | Path, backend: str = "transformers", **options: Any) -> Generator:
    """A Generator over `model_dir` (transformers by default; `options` go to `load_backend`)."""
    return Generator(load_backend(backend, model_dir, **options))
