"""Server settings: the shared ragtune Settings plus serve's own, from a YAML file, RAGTUNE_* env, flags."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import Field

from ragtune.settings import Settings, load_settings
from serve.llamacpp_models import SERVE_GGUF_TYPES


class ServeSettings(Settings):
    model_id: str | None = Field(
        None, description="Name clients send as `model` (default: the model folder's name)."
    )
    max_tokens_cap: int = Field(
        1024, ge=1, description="Largest max_tokens a request may ask for (more is a 400)."
    )
    default_max_tokens: int = Field(256, ge=1, description="max_tokens when a request names none.")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted (more is a 413)."
    )
    poll_interval: float = Field(
        2.0, ge=0, description="Seconds between checks of the index's CURRENT (0: off)."
    )
    retrieval_mode: str | None = Field(
        None,
        pattern="^(dense|bm25|hybrid)$",
        description="dense, bm25 or hybrid search (default: hybrid, or dense on an index without a lexical "
        "part); a request's `retrieval_mode` overrides it.",
    )
    fusion: str = Field(
        "rrf", pattern="^(rrf|weighted)$", description="How hybrid search fuses: rrf or weighted."
    )
    fusion_weight: float = Field(0.5, ge=0, le=1, description="Dense share of a weighted fusion.")
    max_batch_size: int = Field(16, ge=1, description="transformers backend: requests per generation batch.")
    batch_window_ms: float = Field(
        10.0, ge=0, description="transformers backend: wait this long to fill a batch."
    )
    torch_threads: int | None = Field(
        None, ge=1, description="CPU threads torch may use (default: torch's); 1 suits a small or shared CPU."
    )
    prefill_precision: str = Field(
        "auto",
        pattern="^(auto|float32|bf16-autocast)$",
        description="transformers backend on CPU: prompt prefill with bf16 autocast (auto: on a CPU with "
        "native bf16, where it is ~2x faster) or float32.",
    )
    weight_precision: str = Field(
        "auto",
        pattern="^(auto|float32|bf16)$",
        description="transformers backend on CPU: the linear layers' weights in bf16 (auto: on a CPU with "
        "native bf16, unless the prefill is float32; decode reads half the bytes) or float32.",
    )
    prefill_chunk_tokens: int = Field(
        256,
        ge=1,
        description="transformers backend: prompt tokens prefilled per decode step while other requests decode.",
    )
    prefix_cache_mb: float = Field(
        512,
        ge=0,
        description="transformers backend: MiB of recent prompts' KV states kept for reuse by prompts that "
        "repeat them (whole, or a chunk-aligned prefix), answers unchanged; 0 turns reuse off. llama.cpp backend: "
        "any size keeps finished requests' KV cells in their slots for prompts that share their prefix (no extra "
        "memory), 0 turns that off (docs/llamacpp.md).",
    )
    cpu_kernels: bool = Field(
        True,
        description="transformers backend on CPU: ragtune's decode path (in-place KV cache, grouped-head "
        "attention without copies, transposed linears); off gives transformers' own, for comparison.",
    )
    ct2_compute_type: str | None = Field(
        None,
        pattern="^(int8|float32)$",
        description="ctranslate2 backend: int8 or float32 weights (default: int8 where the CPU has it).",
    )
    loras: list[str] = Field(
        default_factory=list,
        description="llama.cpp backend: LoRA adapters served over the one base as NAME=ADAPTER (a GGUF LoRA "
        "or a `ragtune tune generator` folder); a request's `model` picks one by NAME.",
    )
    gguf_type: str | None = Field(
        None,
        pattern=f"^({'|'.join(SERVE_GGUF_TYPES)})$",
        description="llama.cpp backend: the type a model folder without its own model.gguf is converted to "
        "(default f16: its answers match fp32's on 97.5-100% of questions, docs/llamacpp.md); `shipped`: the "
        "default model's own Q4_1 file as is.",
    )
    llamacpp_ctx: int = Field(
        2048, ge=64, description="llama.cpp backend: context positions per request (each slot's KV cache)."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="vllm backend: GPUs per tensor-parallel group.")
    pipeline_parallel_size: int = Field(1, ge=1, description="vllm backend: pipeline stages.")
    max_model_len: int | None = Field(
        None, ge=1, description="vllm backend: context length (default: the model's)."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="vllm backend: fraction of GPU memory."
    )
    # Bounded load (docs/security.md). The defaults only stop runaway load, never a normal client:
    # - 256 requests: the transformers backend runs 16 at once and vLLM 256 (its max_num_seqs); more only
    #   wait, holding sockets and memory, so a 429 that says when to retry serves a client better;
    # - no per-key limit: the server has one API key, shared by all its clients, so a per-key limit would
    #   only be a second queue limit; set it where clients hold separate keys (or, without a key, bearer
    #   tokens of their own) and one must not take every slot;
    # - a million prompt tokens: ~250 prompts of a 4k context; prefilling that many takes minutes even on a
    #   GPU (hours on a CPU), so a request admitted beyond it would wait longer than any client does.
    max_queue: int = Field(
        256,
        ge=1,
        description="Chat requests held at once, generating or waiting for the backend; one more is a 429 "
        "with Retry-After.",
    )
    max_concurrent_per_key: int | None = Field(
        None,
        ge=1,
        description="Chat requests one API key (without a server key: one bearer token, else one client "
        "address) may hold at once; one more is a 429 (default: no limit).",
    )
    max_queued_prompt_tokens: int | None = Field(
        1_000_000,
        ge=1,
        description="Prompt tokens the held chat requests may sum to; a prompt that does not fit now is a "
        "429, one over the whole budget a 413.",
    )
    # What `serve --from RUN` fills from RUN/winner.json (ragtune/winner.py): the winner's prompt settings
    # and its name, so every answer says which run and system it is.
    fewshot_turns: list[dict[str, str]] = Field(
        default_factory=list,
        description="Question/answer turns put before every question (the few-shot systems' examples).",
    )
    default_retrieval: bool = Field(
        True, description="Retrieve when a request does not say (`retrieval`); off for a closed-book winner."
    )
    run_name: str | None = Field(None, description="The run whose winner is served (serve --from).")
    system_name: str | None = Field(None, description="The winning system's name in the run's report.")
    feedback_db: Path | None = Field(
        None,
        description="SQLite file that stores every answer and the ratings of them (POST /v1/feedback); "
        "unset: no answer is stored and /v1/feedback is a 404.",
    )
    insecure_no_auth: bool = Field(
        False,
        description="Serve without an API key on a non-loopback address (anyone who reaches it can chat "
        "and reload the index); without it such a bind is refused.",
    )

    def open_without_key(self) -> bool:
        """True when the server would listen beyond this machine with no API key."""
        has_key = self.api_key is not None and bool(self.api_key.get_secret_value())
        return not has_key and not is_loopback(self.host)

    def admission_limits(self) -> dict[str, int | None]:
        return {
            "max_queue": self.max_queue,
            "max_per_key": self.max_concurrent_per_key,
            "max_prompt_tokens": self.max_queued_prompt_tokens,
        }

    def llamacpp_options(self) -> dict[str, Any]:
        from serve.llamacpp_models import parse_lora_specs

        return {
            "loras": parse_lora_specs(self.loras),
            "gguf_type": self.gguf_type,
            "ctx_per_seq": self.llamacpp_ctx,
            "prefill_chunk_tokens": self.prefill_chunk_tokens,
        }

    def vllm_options(self) -> dict[str, Any]:
        return {
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
        }


def load_serve_settings(config: str | Path | None = None, **flags: Any) -> ServeSettings:
    """File (`config` or $RAGTUNE_CONFIG) → RAGTUNE_* env → non-None flags, like `load_settings`."""
    return load_settings(config, cls=ServeSettings, **flags)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost, or not an address
        return False
