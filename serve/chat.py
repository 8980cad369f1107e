"""Serving logic of `POST /v1/chat/completions`: retrieve, build the RAG prompt, check limits, generate.

The router in app.py only calls `ChatService.build_turn`, then `.complete` or `.start_stream`; serve/errors.py
maps the errors raised here (`APIError`, `BackendError`) to a status.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ragtune.prompt import build_messages
from ragtune.records import Passage
from serve.errors import APIError, error_payload, status_for
from serve.knowledge import KnowledgeHolder, public_message, public_source
from serve.metrics import Metrics
from serve.schemas import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ResponseMessage,
    ServedSystem,
    Source,
    Usage,
)
from serve.torch_threads import single_threaded
from serve.types import Backend, Delta, Prepared, SamplingOptions, backend_failure

if TYPE_CHECKING:
    from serve.feedback import AnswerRecorder

SNIPPET_CHARS = 300
CHAT_DOC = """OpenAI's chat completions, answered from the knowledge index with the passages used (`sources`).

**Supported fields:** `model`, `messages` (text, or a list of text parts), `max_tokens` /
`max_completion_tokens`, `temperature`, `top_p`, `stop`, `seed`, `stream`, `stream_options.include_usage`,
`user` (accepted, not used); ragtune's extensions `retrieval`, `top_k`, `retrieval_mode`, `raw_prompt`.

**Not supported** (a 400 that names the field, never a silently different answer): `tools`, `functions`,
`tool_choice` and `function_call` other than "none", `response_format` other than `{"type": "text"}`,
`logprobs` true, `top_logprobs` above 0, `n` above 1. Other unknown fields are ignored.

**Bounded load:** a 429 with a Retry-After header when the server's queue (`--max-queue`), this key's share
(`--max-concurrent-per-key`) or the budget of queued prompt tokens (`--max-queued-prompt-tokens`) is full;
a 413 when the prompt alone is over that budget.
"""


@dataclass
class ChatLimits:
    max_tokens_cap: int = 1024  # a request asking for more gets a 400
    default_max_tokens: int = 256  # when the request names none (then clamped to the context left)
    default_top_k: int = 4
    default_retrieval: bool = True  # when a request does not say (off for a closed-book winner)


@dataclass(frozen=True)
class PromptSpec:
    """What the model's ragtune.json says about its prompt (None: the prompt module's defaults)."""

    system_prompt: str | None = None
    user_template: str | None = None  # e.g. "Reply in one phrase. {question}" (the tuner's --user-template)
    history: tuple[dict[str, str], ...] = ()  # few-shot turns before the conversation (serve --from)

    def question(self, q: str) -> str:
        return self.user_template.format(question=q) if self.user_template else q


@dataclass
class Turn:
    """What one request will generate from: the messages, the prompt, the sampling options, the sources."""

    prepared: Prepared
    opts: SamplingOptions
    sources: list[Source] = field(default_factory=list)
    index_version: str | None = None
    question: str = ""  # the last user message (what the feedback database stores as the question)
    request_messages: list[dict[str, str]] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)  # whole, as quoted in the prompt


def to_source(p: Passage) -> Source:
    return Source(
        chunk_id=p.chunk_id,
        doc_id=p.doc_id,
        title=p.title,
        source=p.source,
        score=float(p.score),
        snippet=p.text[:SNIPPET_CHARS],
    )


class ChatService:
    def __init__(
        self,
        backend: Backend,
        knowledge: KnowledgeHolder | None,
        metrics: Metrics,
        limits: ChatLimits,
        spec: PromptSpec | None = None,
        served: ServedSystem | None = None,
        recorder: AnswerRecorder | None = None,
    ):
        self.backend, self.knowledge, self.metrics, self.limits = backend, knowledge, metrics, limits
        self.spec = spec or PromptSpec()
        self.served = served
        self.recorder = recorder  # stores every finished answer (serve --feedback-db), else None

    # --- building the turn ----------------------------------------------------------------------------
    async def retrieve(self, query: str, k: int, mode: str | None = None) -> tuple[list[Passage], str | None]:
        if self.knowledge is None or k <= 0:
            return [], None
        from retriever import LexicalMissing

        t0 = time.perf_counter()
        with self.knowledge.lease() as retriever:
            try:
                passages = await asyncio.to_thread(_search_single_threaded, retriever, query, k, mode)
            except LexicalMissing as e:
                msg = public_message(str(e), self.knowledge.index_dir)
                raise APIError(400, msg, param="retrieval_mode", code="no_lexical_index") from None
            version = retriever.version
            roots = retriever.index.manifest.get("sources", [])
        passages = [replace(p, source=public_source(p.source, roots)) for p in passages]
        self.metrics.retrieval.observe(time.perf_counter() - t0)
        return passages, version

    async def build_turn(self, req: ChatCompletionRequest) -> Turn:
        unsupported = req.unsupported_field()
        if unsupported is not None:
            name, fix = unsupported
            raise APIError(
                400,
                f"`{name}` is not supported by this server; {fix}",
                param=name,
                code="unsupported_parameter",
            )
        msgs = [{"role": m.role, "content": m.text()} for m in req.messages]
        sources: list[Source] = []
        passages: list[Passage] = []
        version, question = None, ""
        if req.raw_prompt:
            messages = msgs
        else:
            users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
            if not users:
                raise APIError(
                    400,
                    "`messages` has no user message; the last user message is the question",
                    param="messages",
                    code="no_user_message",
                )
            last = users[-1]
            question = msgs[last]["content"]
            if not question.strip():
                raise APIError(
                    400,
                    f"`messages[{last}].content` is empty; ask a question",
                    param="messages",
                    code="empty_question",
                )
            system = [m["content"] for m in msgs[:last] if m["role"] in ("system", "developer")]
            history = [m for m in msgs[:last] if m["role"] in ("user", "assistant")]
            if self.limits.default_retrieval if req.retrieval is None else req.retrieval:
                k = self.limits.default_top_k if req.top_k is None else req.top_k
                passages, version = await self.retrieve(question, k, req.retrieval_mode)
                sources = [to_source(p) for p in passages]
            messages = build_messages(
                self.spec.question(question),
                passages or None,
                system[-1] if system else self.spec.system_prompt,
                [*self.spec.history, *history],
            )
        prepared = self.backend.prepare(messages)
        prepared.extra["raw_prompt"] = req.raw_prompt
        return Turn(prepared, self._options(req, prepared), sources, version, question, msgs, passages)

    def _options(self, req: ChatCompletionRequest, prepared: Prepared) -> SamplingOptions:
        cap, ctx, n_prompt = self.limits.max_tokens_cap, self.backend.max_context, prepared.prompt_tokens
        asked = req.max_completion_tokens or req.max_tokens
        if asked is not None and asked > cap:
            raise APIError(
                400,
                f"`max_tokens` is {asked} but this server allows at most {cap}; ask for fewer",
                param="max_tokens",
                code="max_tokens_over_cap",
            )
        if ctx and n_prompt is not None:
            if n_prompt >= ctx:
                raise APIError(
                    400,
                    f"the prompt has {n_prompt} tokens but the model's context is {ctx} tokens; "
                    f"shorten the messages or lower `top_k`",
                    param="messages",
                    code="context_length_exceeded",
                )
            if asked is not None and n_prompt + asked > ctx:
                raise APIError(
                    400,
                    f"the prompt has {n_prompt} tokens and `max_tokens` asks for {asked}, over the "
                    f"model's context of {ctx} tokens; ask for at most {ctx - n_prompt}",
                    param="max_tokens",
                    code="context_length_exceeded",
                )
        max_tokens = asked or self.limits.default_max_tokens
        if ctx and n_prompt is not None:
            max_tokens = min(max_tokens, ctx - n_prompt)
        return SamplingOptions(
            max_tokens=max_tokens,
            stop=tuple(req.stop or ()),
            seed=0 if req.seed is None else req.seed,
            temperature=0.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
        )

    # --- generating -------------------------------------------------------------------------------------
    async def complete(self, req: ChatCompletionRequest, turn: Turn, model_id: str) -> ChatCompletionResponse:
        parts: list[str] = []
        last = Delta()
        async for d in self.backend.stream(turn.prepared, turn.opts):
            if d.error:
                raise backend_failure(self.backend.kind, d.error)
            parts.append(d.text)
            last = d
        usage = self._usage(turn, last)
        response_id = new_id()
        await self._record(turn, response_id, model_id, "".join(parts))
        return ChatCompletionResponse(
            id=response_id,
            created=int(time.time()),
            model=model_id,
            choices=[Choice(message=ResponseMessage(content="".join(parts)), finish_reason=_reason(last))],
            usage=usage,
            sources=turn.sources,
            index_version=turn.index_version,
            ragtune_system=self.served,
        )

    async def start_stream(self, req: ChatCompletionRequest, turn: Turn, model_id: str) -> AsyncIterator[str]:
        """Start generating and wait for the first piece, so that a failure is still an HTTP error status;
        then return the SSE line iterator."""
        t0 = time.perf_counter()
        agen = self.backend.stream(turn.prepared, turn.opts)
        first = await agen.__anext__()
        if first.error:
            await agen.aclose()
            raise backend_failure(self.backend.kind, first.error)
        return self._sse_stream(req, turn, model_id, agen, first, t0)

    async def _sse_stream(
        self,
        req: ChatCompletionRequest,
        turn: Turn,
        model_id: str,
        agen: AsyncIterator[Delta],
        first: Delta,
        t0: float,
    ) -> AsyncIterator[str]:
        """SSE lines. The first chunk carries the role and the sources; `[DONE]` ends the stream."""
        base = {
            "id": new_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model_id,
        }
        yield _sse_event(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
                "sources": [s.model_dump() for s in turn.sources],
                "index_version": turn.index_version,
                **({"ragtune_system": self.served.model_dump()} if self.served else {}),
            }
        )
        last, seen_text, finished, parts = Delta(), False, False, []
        self.metrics.in_flight.inc()
        try:
            d: Delta | None = first
            while d is not None:
                if d.error:  # headers are sent: report in-band, the way OpenAI's servers do
                    yield self._error_event(d.error)
                    yield "data: [DONE]\n\n"
                    return
                last = d
                parts.append(d.text)
                if d.text:
                    if not seen_text:
                        self.metrics.ttft.observe(time.perf_counter() - t0)
                        seen_text = True
                    yield _sse_event(
                        {
                            **base,
                            "choices": [{"index": 0, "delta": {"content": d.text}, "finish_reason": None}],
                        }
                    )
                d = await anext(agen, None)
            yield _sse_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": _reason(last)}]})
            if req.stream_options is not None and req.stream_options.include_usage:
                yield _sse_event({**base, "choices": [], "usage": self._usage(turn, last).model_dump()})
            finished = True
            await self._record(turn, base["id"], model_id, "".join(parts))  # stored before [DONE]
            yield "data: [DONE]\n\n"
        finally:
            if not finished and last.finish_reason is None:
                self.metrics.cancelled.inc()
            await agen.aclose()  # a client that went away cancels its generation
            self.metrics.in_flight.dec()
            self.metrics.latency.labels(route="/v1/chat/completions (stream, to end)").observe(
                time.perf_counter() - t0
            )

    async def _record(self, turn: Turn, response_id: str, model_id: str, answer: str) -> None:
        if self.recorder is not None:
            await self.recorder.record(turn, response_id, model_id, answer, self.served)

    def _error_event(self, message: str) -> str:
        """A backend failure as an in-band event: the error object its status would carry."""
        failure = backend_failure(self.backend.kind, message)
        return _sse_event(error_payload(status_for(failure), str(failure)))

    def _usage(self, turn: Turn, last: Delta) -> Usage:
        n_prompt = turn.prepared.prompt_tokens
        if last.prompt_tokens is not None:
            n_prompt = last.prompt_tokens if n_prompt is None else n_prompt
        n_prompt = n_prompt or 0
        self.metrics.prompt_tokens.inc(n_prompt)
        self.metrics.completion_tokens.inc(last.completion_tokens)
        return Usage(
            prompt_tokens=n_prompt,
            completion_tokens=last.completion_tokens,
            total_tokens=n_prompt + last.completion_tokens,
        )


def _reason(d: Delta) -> str:
    return d.finish_reason if d.finish_reason in ("stop", "length") else "stop"


def _sse_event(obj: Any) -> str:
    """One server-sent event carrying `obj` as JSON."""
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _search_single_threaded(retriever, query: str, k: int, mode: str | None = None) -> list[Passage]:
    """One query's search on an executor thread, torch single-threaded there: a torch encoder running
    multi-threaded on this thread would start a second OpenMP team next to the generator's and slow every
    decode step (serve/torch_threads.py). One short query loses little on one thread."""
    with single_threaded():
        return retriever.search(query, k, mode)
