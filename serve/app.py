"""The FastAPI app: lifespan (load backend, encoder and index once), thin routers, auth, metrics.

Routers only parse, call the serving logic (serve/chat.py, serve/knowledge.py) and return; errors are
`APIError`s that serve/errors.py turns into OpenAI-style objects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ragtune.artifacts import read_artifact
from ragtune.errors import RagtuneError
from ragtune.feedback import open_feedback
from ragtune.prompt import PROMPT_FORMAT, build_messages
from serve.admission import REASONS, AdmissionGate, AdmissionLimits, AdmittedStream
from serve.auth import caller_id, check_bearer
from serve.backends import load_backend, served_names
from serve.chat import CHAT_DOC, ChatLimits, ChatService, PromptSpec, to_source
from serve.config import ServeSettings
from serve.errors import APIError, BodySizeLimit, error_response, install_error_handlers
from serve.feedback import AnswerRecorder
from serve.knowledge import KnowledgeHolder
from serve.metrics import Metrics
from serve.page import router as chat_page
from serve.schemas import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    IndexInfo,
    ModelCard,
    ModelList,
    ReloadResponse,
    RetrieveRequest,
    RetrieveResponse,
    ServedSystem,
)
from serve.types import Backend

logger = logging.getLogger(__name__)

KNOWN_PROMPT_FORMATS = (PROMPT_FORMAT,)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 502, 503)
}


@dataclass
class State:
    settings: ServeSettings
    metrics: Metrics
    backend: Backend | None = None
    knowledge: KnowledgeHolder | None = None
    chat: ChatService | None = None
    admission: AdmissionGate | None = None
    feedback: AnswerRecorder | None = None  # serve --feedback-db
    model_id: str = ""
    created: int = 0
    ready: bool = False


def prompt_spec(model: str | Path | None) -> PromptSpec:
    """How the model was trained to be prompted, from its ragtune.json (documented default: ragtune-rag-v1
    with the prompt module's system prompts and the question as is). An unknown format is refused."""
    if model is None or not Path(model).is_dir():
        return PromptSpec()
    try:
        art = read_artifact(model)
    except ValueError as e:
        raise RagtuneError(str(e)) from None
    fmt = art.get("prompt_format", PROMPT_FORMAT)
    if fmt not in KNOWN_PROMPT_FORMATS:
        raise RagtuneError(
            f"{model}/ragtune.json says the model was trained with prompt format {fmt!r}, but this "
            f"server renders {', '.join(KNOWN_PROMPT_FORMATS)}; retrain or re-export the model"
        )
    template = art.get("user_template")
    if template is not None:
        try:
            template.format(question="q")
        except (KeyError, IndexError, ValueError) as e:
            raise RagtuneError(
                f"{model}/ragtune.json has a user_template that cannot be filled ({e!r}); it must "
                "contain {question} and no other {field}"
            ) from None
    return PromptSpec(art.get("system_prompt"), template)


def fewshot_history(turns: list[dict[str, str]], system_prompt: str | None) -> tuple[dict[str, str], ...]:
    """Few-shot turns as the earlier messages eval prompted the system with (eval/backends.message_builder):
    each question rendered closed-book by the one prompt function, then its answer."""
    out: list[dict[str, str]] = []
    for t in turns:
        out.append(build_messages(t["question"], None, system_prompt)[-1])
        out.append({"role": "assistant", "content": t["answer"]})
    return tuple(out)


def served_system(cfg: ServeSettings) -> ServedSystem | None:
    """The run and system this server answers as (serve --from), or None."""
    return (
        ServedSystem(run=cfg.run_name, system=cfg.system_name) if cfg.run_name and cfg.system_name else None
    )


def create_app(
    settings: ServeSettings | None = None, backend: Backend | str | None = None, **overrides: Any
) -> FastAPI:
    """The app, from `settings` or keyword ServeSettings fields (`model=`, `index=`, `backend="openai"`, ...).

    `backend` may also be a ready Backend object, used instead of loading one (tests, embedding)."""
    if isinstance(backend, str):
        overrides["backend"], backend = backend, None
    cfg = settings or ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    spec = prompt_spec(cfg.model)  # a bad ragtune.json is refused before anything loads
    if cfg.fewshot_turns:
        spec = replace(spec, history=fewshot_history(cfg.fewshot_turns, spec.system_prompt))
    st = _new_state(cfg)
    app = FastAPI(
        title="ragtune",
        version="0.1.0",
        lifespan=Lifespan(st, spec, backend),
        description="OpenAI-compatible RAG chat with sources, over a live-refreshing knowledge index.",
    )
    app.state.serve = st
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=cfg.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=st.metrics)
    _include_routers(app)
    return app


def _new_state(cfg: ServeSettings) -> State:
    """The app's state before it starts: settings, metrics and the admission gate (which reports to them)."""
    metrics = Metrics()
    st = State(settings=cfg, metrics=metrics)
    gate = st.admission = AdmissionGate(AdmissionLimits(**cfg.admission_limits()))
    gate.on_reject = metrics.watch_admission(REASONS, lambda: gate.admitted, lambda: gate.tokens)
    return st


class Lifespan:
    """The app's lifespan: load the backend, the index and the chat service once; close them on shutdown."""

    def __init__(self, st: State, spec: PromptSpec, backend: Backend | None = None):
        self.st, self.spec, self.given_backend = st, spec, backend

    @asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        st, cfg, t0 = self.st, self.st.settings, time.perf_counter()
        if cfg.torch_threads:
            import torch

            torch.set_num_threads(cfg.torch_threads)
        st.backend = self.given_backend or await asyncio.to_thread(self._load_backend)
        try:
            await self._start()
            logger.info(
                "serving %s with the %s backend%s (ready in %.1f s)",
                st.model_id,
                st.backend.kind,
                f", index {cfg.index} version {st.knowledge.version}" if st.knowledge else ", no index",
                time.perf_counter() - t0,
            )
            yield
        finally:
            await self._stop()

    def _load_backend(self) -> Backend:
        cfg, metrics = self.st.settings, self.st.metrics
        return load_backend(
            cfg.backend,
            cfg.model,
            model_id=cfg.model_id,
            max_batch_size=cfg.max_batch_size,
            batch_window_ms=cfg.batch_window_ms,
            on_batch=metrics.batch_size.observe,
            openai_base_url=cfg.openai_base_url,
            openai_api_key=cfg.openai_api_key.get_secret_value() if cfg.openai_api_key else None,
            vllm_options=cfg.vllm_options(),
            compute_type=cfg.ct2_compute_type,
            llamacpp_options=cfg.llamacpp_options(),
            prefill_precision=cfg.prefill_precision,
            cpu_kernels=cfg.cpu_kernels,
            prefill_chunk_tokens=cfg.prefill_chunk_tokens,
            weight_precision=cfg.weight_precision,
            prefix_cache_mb=cfg.prefix_cache_mb,
        )

    async def _start(self) -> None:
        """Start the backend, open the index (and its polling), then build the chat service: ready."""
        st, cfg, metrics = self.st, self.st.settings, self.st.metrics
        if hasattr(st.backend, "start"):
            await st.backend.start()
        st.model_id = cfg.model_id or st.backend.model_id
        if cfg.index is not None:
            st.knowledge = await asyncio.to_thread(
                KnowledgeHolder,
                cfg.index,
                cfg.retriever,
                cfg.poll_interval,
                metrics.set_index_version,
                lambda result: metrics.index_reloads.labels(result=result).inc(),
                _retrieval_mode(cfg),
            )
            st.knowledge.start_polling()
        if cfg.feedback_db is not None:
            st.feedback = AnswerRecorder(await asyncio.to_thread(open_feedback, cfg.feedback_db))
        limits = ChatLimits(cfg.max_tokens_cap, cfg.default_max_tokens, cfg.top_k, cfg.default_retrieval)
        st.chat = ChatService(
            st.backend, st.knowledge, metrics, limits, self.spec, served_system(cfg), st.feedback
        )
        st.created, st.ready = int(time.time()), True

    async def _stop(self) -> None:
        st = self.st
        st.ready = False
        if st.knowledge is not None:
            await st.knowledge.aclose()
        await st.backend.aclose()
        if st.feedback is not None:
            st.feedback.close()
        logger.info("server stopped")


def _include_routers(app: FastAPI) -> None:
    app.include_router(public)  # health, readiness, metrics: no key
    app.include_router(chat_page)  # the chat page at / (serve/page.py)
    app.include_router(v1)  # the OpenAI-compatible API, behind the key


def get_state(request: Request) -> State:
    return request.app.state.serve


def get_chat(request: Request) -> ChatService:
    st = get_state(request)
    if st.chat is None:
        raise APIError(503, "not ready: the server is still loading")
    return st.chat


def get_feedback(request: Request) -> AnswerRecorder:
    st = get_state(request)
    if st.feedback is None:
        raise APIError(
            404,
            "this server stores no feedback; start it with --feedback-db FILE",
            code="no_feedback_db",
        )
    return st.feedback


def get_knowledge(request: Request) -> KnowledgeHolder:
    st = get_state(request)
    if st.knowledge is None:
        raise APIError(404, "this server has no knowledge index; start it with --index DIR", code="no_index")
    return st.knowledge


async def authorized(request: Request) -> None:
    key = get_state(request).settings.api_key
    check_bearer(request, key.get_secret_value() if key else None)


StateDep = Annotated[State, Depends(get_state)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
KnowledgeDep = Annotated[KnowledgeHolder, Depends(get_knowledge)]
FeedbackDep = Annotated[AnswerRecorder, Depends(get_feedback)]

public = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorized)], responses=ERRORS)


@public.get("/healthz", summary="Liveness: the process answers.")
async def healthz() -> dict:
    return {"status": "ok"}


@public.get(
    "/readyz", summary="Readiness: model and index loaded.", responses={503: {"model": ErrorResponse}}
)
async def readyz(st: StateDep):
    if not st.ready:
        return error_response(503, "not ready: the model or the index is still loading, or shutting down")
    return {
        "status": "ready",
        "model": st.model_id,
        "backend": st.backend.kind,
        "index_version": st.knowledge.version if st.knowledge else None,
        "ragtune_system": (served.model_dump() if (served := served_system(st.settings)) else None),
        "feedback": st.feedback is not None,  # POST /v1/feedback stores ratings (serve --feedback-db)
    }


@public.get("/metrics", summary="Prometheus metrics.", response_class=Response)
async def metrics(st: StateDep) -> Response:
    return Response(st.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@v1.get("/models", response_model=ModelList)
async def models(st: StateDep) -> ModelList:
    max_len = st.backend.max_context if st.backend else None
    base = ModelCard(
        id=st.model_id, created=st.created, max_model_len=max_len, ragtune_system=served_system(st.settings)
    )
    adapters = [
        ModelCard(id=name, created=st.created, max_model_len=max_len, parent=st.model_id)
        for name in served_names(st.backend)
    ]
    return ModelList(data=[base, *adapters])


@v1.post("/chat/completions", response_model=ChatCompletionResponse, description=CHAT_DOC)
async def chat_completions(req: ChatCompletionRequest, request: Request, st: StateDep, chat: ChatDep):
    adapters = served_names(st.backend)
    if req.model not in (st.model_id, str(st.settings.model), *adapters):
        names = ", ".join(repr(n) for n in (st.model_id, *adapters))
        raise APIError(
            404,
            f"model {req.model!r} is not served here; use {names} (GET /v1/models)",
            param="model",
            code="model_not_found",
        )
    answering = req.model if req.model in adapters else st.model_id
    # A slot until the answer is sent, fails or its client leaves: a 429 when the server or this key is full
    with st.admission.admit(caller_id(request)) as ticket:
        turn = await chat.build_turn(req)
        if answering != st.model_id:
            turn.prepared.extra["adapter"] = answering  # the LoRA adapter the llama.cpp backend applies
        ticket.charge(turn.prepared)  # 429 when its prompt tokens do not fit now, 413 never
        if req.stream:
            lines = await chat.start_stream(req, turn, answering)
            return AdmittedStream(
                ticket,
                lines,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _until_disconnect(request, chat.complete(req, turn, answering), st.metrics)


def _retrieval_mode(cfg: Any) -> Any:
    from retriever import RetrievalMode

    return RetrievalMode(cfg.retrieval_mode, cfg.fusion, cfg.fusion_weight)


@v1.post("/retrieve", response_model=RetrieveResponse)
async def retrieve(
    req: RetrieveRequest, request: Request, st: StateDep, chat: ChatDep, kn: KnowledgeDep
) -> RetrieveResponse:
    k = req.top_k or chat.limits.default_top_k or 4
    # A slot like a chat request's (the queue and per-key limits: a 429 when full); a search has no prompt
    # tokens to charge against the token budget.
    with st.admission.admit(caller_id(request)):
        passages, version = await chat.retrieve(req.query, k, req.retrieval_mode)
    return RetrieveResponse(index_version=version or kn.version, data=[to_source(p) for p in passages])


@v1.post(
    "/feedback", response_model=FeedbackResponse, summary="Rate an answer: up or down, with a correction."
)
async def feedback(req: FeedbackRequest, request: Request, st: StateDep, fb: FeedbackDep) -> FeedbackResponse:
    # A slot like a chat request's (queue and per-key limits); answered only once the row is committed
    with st.admission.admit(caller_id(request)):
        return await fb.rate(req)


@v1.get("/index", response_model=IndexInfo)
async def index_info(kn: KnowledgeDep) -> IndexInfo:
    with kn.lease() as retriever:
        m = retriever.index.manifest
        return IndexInfo(
            version=retriever.version,
            dir=kn.name,  # the index folder's name, never its path on the server
            counts=m.get("counts", {}),
            encoder={k: v for k, v in m.get("encoder", {}).items() if k != "model_path"},
            created=m.get("created"),
            parent=m.get("parent"),
            last_refused=kn.last_refused,
        )


@v1.post(
    "/index/reload", response_model=ReloadResponse, summary="Load the published index version now (admin)."
)
async def index_reload(kn: KnowledgeDep) -> ReloadResponse:
    return ReloadResponse(**await kn.reload())


async def _until_disconnect(request: Request, coro, metrics: Metrics) -> Any:
    """Run a non-streaming generation; cancel it (and its batch row) if the client disconnects first."""
    task = asyncio.ensure_future(coro)
    metrics.in_flight.inc()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                metrics.cancelled.inc()
                logger.info("client disconnected; generation cancelled")
                return JSONResponse({}, status_code=499)
    finally:
        metrics.in_flight.dec()
        if not task.done():
            task.cancel()


class RequestMetrics:
    """ASGI middleware: count requests by route template and status, and time them."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(route=name, status=str(status[0])).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - t0)
