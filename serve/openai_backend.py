"""The openai backend: generation by any remote OpenAI-compatible server (a vLLM cluster, another ragtune).

This server still retrieves and builds the RAG prompt; the remote one only generates. When the remote
is itself a ragtune server (its /v1/models says `owned_by: ragtune`), requests carry `raw_prompt: true`
so it does not wrap the prompt a second time. When `--model` names a local model folder, its tokenizer
counts prompt tokens and checks the context here; otherwise the remote's usage report is used.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.prompt import render_prompt
from serve.types import Delta, Messages, Prepared, SamplingOptions, UpstreamFailed

logger = logging.getLogger(__name__)


class OpenAIBackend:
    kind = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | Path | None = None,
        model_id: str | None = None,
        timeout: float = 600.0,
    ):
        from openai import AsyncOpenAI

        if not base_url:
            raise RagtuneError(
                "the openai backend needs the remote server's URL: pass --openai-base-url "
                "(e.g. http://host:8000/v1) or set RAGTUNE_OPENAI_BASE_URL"
            )
        self.base_url = base_url
        # The client insists on a key; a remote without auth ignores it.
        self.client = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", max_retries=0, timeout=timeout
        )
        self.tokenizer = None
        self.max_context: int | None = None
        self.remote_model = str(model) if model else None
        local = Path(model) if model else None
        if local is not None and local.is_dir():
            from transformers import AutoConfig, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(local), local_files_only=True)
            cfg = AutoConfig.from_pretrained(str(local), local_files_only=True)
            self.max_context = getattr(cfg, "max_position_embeddings", None)
            self.remote_model = local.name
        self.model_id = model_id or self.remote_model or "remote"
        self.remote_is_ragtune = False

    async def start(self) -> None:
        """Ask the remote which models it serves; pick ours (or its only one) and notice a ragtune remote."""
        import openai

        try:
            models = [m async for m in self.client.models.list()]
        except (openai.APIConnectionError, openai.APIStatusError) as e:
            raise RagtuneError(
                f"cannot list models of the remote server {self.base_url} ({e}); check "
                "--openai-base-url and --openai-api-key"
            ) from None
        ids = [m.id for m in models]
        if self.remote_model not in ids:
            if not ids:
                raise RagtuneError(f"the remote server {self.base_url} serves no model")
            logger.info("remote serves %s; using %s", ids, ids[0])
            self.remote_model = ids[0]
        card = next(m for m in models if m.id == self.remote_model)
        self.remote_is_ragtune = getattr(card, "owned_by", None) == "ragtune"

    def prepare(self, messages: Messages) -> Prepared:
        if self.tokenizer is None:
            return Prepared(messages=list(messages))
        safe, ids = render_prompt(self.tokenizer, messages)
        return Prepared(messages=safe, prompt_ids=ids)

    def request_kwargs(self, prepared: Prepared, opts: SamplingOptions) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": self.remote_model,
            "messages": prepared.messages,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if opts.seed is not None:
            kw["seed"] = opts.seed
        if opts.stop:
            kw["stop"] = list(opts.stop)
        if self.remote_is_ragtune:
            kw["extra_body"] = {"raw_prompt": True}
        return kw

    async def stream(self, prepared: Prepared, opts: SamplingOptions) -> AsyncIterator[Delta]:
        import openai

        try:
            response = await self.client.chat.completions.create(**self.request_kwargs(prepared, opts))
        except openai.APIStatusError as e:
            status = e.status_code if 400 <= e.status_code < 500 else None  # its 4xx is passed on
            raise UpstreamFailed(f"the remote server refused the request: {_message(e)}", status) from None
        except openai.APIConnectionError as e:
            raise UpstreamFailed(f"cannot reach the remote server {self.base_url}: {e}") from None
        pieces, reason, usage = 0, None, None
        try:
            async for chunk in response:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or ():
                    if choice.delta is not None and choice.delta.content:
                        pieces += 1
                        yield Delta(text=choice.delta.content, completion_tokens=pieces)
                    if choice.finish_reason:
                        reason = choice.finish_reason
        except openai.APIError as e:
            yield Delta(finish_reason="error", error=f"the remote server failed mid-stream: {e}")
            return
        finally:
            await (
                response.close()
            )  # on early exit this drops the connection, which cancels the remote request
        yield Delta(
            completion_tokens=usage.completion_tokens if usage else pieces,
            prompt_tokens=usage.prompt_tokens if usage else None,
            finish_reason=reason if reason in ("stop", "length") else "stop",
        )

    async def aclose(self) -> None:
        await self.client.close()


def _message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(e)
