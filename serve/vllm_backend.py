"""The vLLM backend (GPU): vLLM's in-process async engine, imported lazily.

Why in-process `AsyncLLM` (vLLM's `AsyncLLMEngine` is an alias of it in the V1 engine) rather than a
managed `vllm serve` subprocess: the gateway needs token-level streaming, cancellation of a request whose
client went away (`engine.abort(request_id)`), and generation from exactly the prompt token ids it counted
for usage and the context check. In process we get all three without a second HTTP hop, a second port
and process supervision; vLLM still batches continuously across our concurrent requests. A separately
run `vllm serve` (for example a multi-node cluster with Ray) is served through the `openai` backend.

Written against vLLM's documented API (examples/offline_inference/async_llm_streaming.py):
`AsyncEngineArgs(model=..., tensor_parallel_size=..., pipeline_parallel_size=..., max_model_len=...,
gpu_memory_utilization=...)`, `AsyncLLM.from_engine_args(args)`,
`engine.generate(request_id=..., prompt=..., sampling_params=...)` yielding RequestOutputs,
`SamplingParams(..., output_kind=RequestOutputKind.DELTA)`, `engine.abort(id)`, `engine.shutdown()`.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ragtune.prompt import control_token_strings, render_prompt
from serve.types import Delta, Messages, Prepared, SamplingOptions

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'ragtune[gpu]' (vLLM needs a CUDA GPU); or use --backend transformers"


@functools.cache
def is_vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the vllm backend needs vLLM: {INSTALL_HINT}") from e
    return vllm


def engine_kwargs(
    model_dir: str | Path,
    tensor_parallel_size: int = 1,
    pipeline_parallel_size: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    seed: int = 0,
) -> dict[str, Any]:
    """Arguments for `AsyncEngineArgs`: the ragtune flags passed through, validated with the flag's name."""
    for name, value in (
        ("tensor_parallel_size", tensor_parallel_size),
        ("pipeline_parallel_size", pipeline_parallel_size),
    ):
        if value < 1:
            raise ValueError(f"`{name}` should be a positive integer but the value passed is {value}")
    if not 0 < gpu_memory_utilization <= 1:
        raise ValueError(
            f"`gpu_memory_utilization` should be in (0, 1] but the value passed is {gpu_memory_utilization}"
        )
    kw: dict[str, Any] = {
        "model": str(model_dir),
        "tokenizer": str(model_dir),
        "tensor_parallel_size": tensor_parallel_size,
        "pipeline_parallel_size": pipeline_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "seed": seed,
    }
    if max_model_len is not None:
        if max_model_len < 1:
            raise ValueError(
                f"`max_model_len` should be a positive integer but the value passed is {max_model_len}"
            )
        kw["max_model_len"] = max_model_len
    return kw


def sampling_kwargs(opts: SamplingOptions) -> dict[str, Any]:
    """Arguments for `vllm.SamplingParams` (output_kind is added by the backend: DELTA, for streaming)."""
    return {
        "n": 1,
        "max_tokens": opts.max_tokens,
        "temperature": opts.temperature,
        "top_p": opts.top_p,
        "seed": opts.seed,
        "stop": list(opts.stop) or None,
    }


FINISH = {"stop": "stop", "length": "length", "abort": "cancelled"}


class VLLMBackend:
    kind = "vllm"

    def __init__(self, model_dir: str | Path, model_id: str | None = None, **engine_options: Any):
        vllm = import_vllm()
        from transformers import AutoConfig, AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.model_dir = Path(model_dir)
        self.model_id = model_id or self.model_dir.name
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._specials = control_token_strings(self.tokenizer)
        kw = engine_kwargs(self.model_dir, **engine_options)
        ctx = getattr(
            AutoConfig.from_pretrained(str(self.model_dir), local_files_only=True),
            "max_position_embeddings",
            None,
        )
        self.max_context = kw.get("max_model_len") or ctx
        logger.info("starting vLLM %s engine: %s", getattr(vllm, "__version__", "?"), kw)
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**kw))

    def prepare(self, messages: Messages) -> Prepared:
        safe, ids = render_prompt(self.tokenizer, messages, self._specials)
        return Prepared(messages=safe, prompt_ids=ids)

    async def stream(self, prepared: Prepared, opts: SamplingOptions) -> AsyncIterator[Delta]:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(**sampling_kwargs(opts), output_kind=RequestOutputKind.DELTA)
        request_id = uuid.uuid4().hex
        n, finished = 0, False
        try:
            async for out in self.engine.generate(
                request_id=request_id,
                prompt={"prompt_token_ids": prepared.prompt_ids},
                sampling_params=params,
            ):
                c = out.outputs[0]
                n += len(c.token_ids)
                finished = bool(out.finished)
                reason = FINISH.get(c.finish_reason or "", "stop") if finished else None
                yield Delta(text=c.text, completion_tokens=n, finish_reason=reason)
                if finished:
                    return
        finally:
            if not finished:  # the client went away (or we were cancelled): free the sequence at once
                await self.engine.abort(request_id)

    async def aclose(self) -> None:
        self.engine.shutdown()
