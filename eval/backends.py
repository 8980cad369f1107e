"""How a system answers: in-process (generator + retriever objects) or over HTTP (a running server).

Both take a batch of (question, messages-builder) and return one row per question:
{"prediction", "passages", "latency_s", "prompt_tokens", "completion_tokens"}.
Every check that can fail (missing folder, index/encoder mismatch, unreachable server) happens in
`open_backend`, before any generation starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.systems import SystemSpec
from ragtune.errors import RagtuneError
from ragtune.hashing import folder_hash
from ragtune.models import check_model_dir
from ragtune.prompt import build_messages

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]
Builder = Callable[[str, Sequence[Any] | None], Messages]


class InProcess:
    """A generator folder loaded with serve.load_generator, plus an optional Retriever."""

    def __init__(self, spec: SystemSpec, generator: Any, retriever: Any | None):
        self.spec, self.generator, self.retriever = spec, generator, retriever

    def describe(self) -> dict[str, Any]:
        from ragtune.artifacts import read_artifact

        d = {
            "mode": "in-process",
            "model_sha256": folder_hash(self.spec.model),
            "artifact": read_artifact(self.spec.model),
        }
        if self.retriever is not None:
            d["index_version"] = self.retriever.version
            d["retriever_fingerprint"] = self.retriever.encoder.fingerprint.get("id")
            d["retrieval_kind"] = self.retriever.kind()
        return d

    def answer(self, questions: Sequence[str], build: Builder, seed: int) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        passages: list[list[Any] | None] = [None] * len(questions)
        if self.retriever is not None:
            passages = self.retriever.search_batch(list(questions), self.spec.top_k)
        msgs = [build(q, p) for q, p in zip(questions, passages)]
        comps = self.generator.generate(msgs, max_tokens=self.spec.max_tokens, stop=None, seed=seed)
        dt = time.perf_counter() - t0  # a batch answers together: each of its questions waited this long
        return [
            {
                "prediction": c.text.strip(),
                "passages": [p.to_dict() for p in ps] if ps is not None else None,
                "latency_s": dt,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
            }
            for c, ps in zip(comps, passages)
        ]

    def close(self) -> None:
        if self.retriever is not None:
            self.retriever.close()


class Http:
    """A running `ragtune serve`, asked one question per request with the official openai client."""

    def __init__(self, spec: SystemSpec, client: Any, model_id: str, info: dict[str, Any]):
        self.spec, self.client, self.model_id, self.info = spec, client, model_id, info

    def describe(self) -> dict[str, Any]:
        d = {"mode": "http", "url": self.spec.url, "model_id": self.model_id, **self.info}
        if self.spec.model:  # the folder the server serves, named by the caller: its hash and ragtune.json
            from ragtune.artifacts import read_artifact

            d.update(model_sha256=folder_hash(self.spec.model), artifact=read_artifact(self.spec.model))
        return d

    def answer(self, questions: Sequence[str], build: Builder, seed: int) -> list[dict[str, Any]]:
        """One request per question, all of the batch in flight at once so the server can batch them
        (it schedules them together; answers come back in the questions' order)."""
        from concurrent.futures import ThreadPoolExecutor

        if len(questions) <= 1:
            return [self._ask(q, build, seed) for q in questions]
        with ThreadPoolExecutor(len(questions)) as pool:
            return list(pool.map(lambda q: self._ask(q, build, seed), questions))

    def _ask(self, q: str, build: Builder, seed: int) -> dict[str, Any]:
        # The server builds the RAG prompt itself from the last user message (the bare question), the
        # earlier turns and a system message if any: the same build_messages call as in-process.
        msgs = [m for m in build(q, None)[:-1] if m["role"] != "system" or self.spec.system_prompt]
        msgs.append({"role": "user", "content": q})
        t0 = time.perf_counter()
        r = self.client.chat.completions.create(
            model=self.model_id,
            messages=msgs,
            max_tokens=self.spec.max_tokens,
            temperature=0,
            seed=seed,
            extra_body=_extension_fields(self.spec),
        )
        dt = time.perf_counter() - t0
        extra = r.model_extra or {}
        # Sources carry a snippet (the passage's first characters), not the whole passage text.
        sources = [{**s, "text": s.get("snippet", "")} for s in extra.get("sources") or []]
        usage = r.usage
        return {
            "prediction": (r.choices[0].message.content or "").strip(),
            "passages": sources if self.spec.retrieval else None,
            "latency_s": dt,
            "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
            "index_version": extra.get("index_version"),
        }

    def close(self) -> None:
        self.client.close()


def _extension_fields(spec: SystemSpec) -> dict[str, Any]:
    """ragtune's chat extensions for this system (the server's own retrieval mode unless one is named)."""
    body: dict[str, Any] = {"retrieval": spec.retrieval, "top_k": spec.top_k}
    if spec.retrieval and spec.retrieval_mode:
        body["retrieval_mode"] = spec.retrieval_mode
    return body


def _open_http(spec: SystemSpec) -> Http:
    import httpx
    from openai import OpenAI

    headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
    try:
        ready = httpx.get(f"{spec.url}/readyz", timeout=5.0, headers=headers)
        models = httpx.get(f"{spec.url}/v1/models", timeout=5.0, headers=headers)
    except httpx.HTTPError as e:
        raise RagtuneError(
            f"system {spec.name!r}: server {spec.url} is unreachable ({e.__class__.__name__}: {e}); "
            f"start it with `ragtune serve` or fix the URL"
        ) from None
    if ready.status_code != 200:
        raise RagtuneError(
            f"system {spec.name!r}: server {spec.url} is not ready (/readyz answered "
            f"{ready.status_code}); wait for it or check its log"
        )
    if models.status_code == 401:
        raise RagtuneError(f"system {spec.name!r}: server {spec.url} wants an API key; pass --api-key")
    data = (models.json().get("data") or [{}]) if models.status_code == 200 else [{}]
    model_id = data[0].get("id", "ragtune")
    info = {f"server_{k}": v for k, v in ready.json().items() if isinstance(v, (str, int, float, bool))}
    if spec.retrieval:
        idx = httpx.get(f"{spec.url}/v1/index", timeout=5.0, headers=headers)
        if idx.status_code == 404:
            raise RagtuneError(
                f"system {spec.name!r} asks for retrieval but server {spec.url} has no index; "
                f"start it with --index DIR"
            )
        if idx.status_code == 200:
            body = idx.json()
            info["index_version"] = body.get("version")
            info["retriever_fingerprint"] = (body.get("encoder") or {}).get("id")
    client = OpenAI(base_url=f"{spec.url}/v1", api_key=spec.api_key or "none", max_retries=0, timeout=300.0)
    return Http(spec, client, model_id, info)


class _Cache:
    """Generators and retrievers shared by systems that name the same folders."""

    def __init__(self):
        self.generators: dict[str, Any] = {}
        self.retrievers: dict[tuple, Any] = {}


def open_backend(spec: SystemSpec, cache: _Cache, known_doc_ids: set[str] | None = None) -> InProcess | Http:
    """Check a system's inputs and open what answers for it; raise RagtuneError before any long work."""
    if spec.url:
        if spec.model:
            check_model_dir(spec.model, f"system {spec.name!r}: the model")
        return _open_http(spec)
    model = check_model_dir(spec.model, f"system {spec.name!r}: the model")
    retr = None
    if spec.retrieval:
        retr = _open_retriever(spec, cache)
    key = str(model.resolve())
    if key not in cache.generators:
        from serve import load_generator

        cache.generators[key] = load_generator(str(model), backend=_engine(model))
    return InProcess(spec, cache.generators[key], retr)


def _engine(model: Path) -> str:
    """The engine in-process systems generate with: the serving setting (RAGTUNE_BACKEND, default auto: the
    engine `ragtune serve` would pick here for this model), so a comparison measures what would be deployed;
    a remote backend (openai) has no place in process, so transformers then."""
    from ragtune.settings import load_settings
    from serve import resolve_backend

    kind = resolve_backend(load_settings().backend, model)
    return kind if kind in ("transformers", "llama.cpp", "ctranslate2", "vllm") else "transformers"


def _open_retriever(spec: SystemSpec, cache: _Cache) -> Any:
    from retriever import RetrievalMode, Retriever

    if not Path(spec.index or "").is_dir():
        raise RagtuneError(
            f"system {spec.name!r}: index folder {spec.index} does not exist; build it with "
            f"`ragtune ingest SOURCES --index {spec.index}`"
        )
    mode = RetrievalMode(spec.retrieval_mode, spec.fusion, spec.fusion_weight)
    key = (str(Path(spec.index).resolve()), spec.index_version, spec.retriever)
    if key not in cache.retrievers:
        cache.retrievers[key] = Retriever.open(
            spec.index, retriever=spec.retriever, version=spec.index_version
        )
    return _Shared(cache.retrievers[key], mode)


class _Shared:
    """A retriever shared by several systems; closing one system's view leaves it open."""

    def __init__(self, r: Any, mode: Any = None):
        self._r, self.mode = r, mode
        self.encoder = r.encoder
        r.kind(mode)  # bm25 or hybrid on an index without a lexical part: LexicalMissing now, not mid-run

    @property
    def version(self) -> str:
        return self._r.version

    @property
    def index(self) -> Any:
        return self._r.index

    def kind(self) -> str:
        return self._r.kind(self.mode)

    def search_batch(self, qs: Sequence[str], k: int) -> list[list[Any]]:
        return self._r.search_batch(qs, k, self.mode)

    def close(self) -> None:
        pass


def message_builder(spec: SystemSpec, shots: Sequence[tuple[str, str]]) -> Builder:
    """The ONE prompt function, with k-shot examples as earlier turns (rendered by the same function).

    The system prompt is the spec's, else the one the model's ragtune.json records (as the server does)."""
    system = spec.system_prompt
    if system is None and spec.model:
        from ragtune.artifacts import read_artifact

        system = read_artifact(spec.model).get("system_prompt")
    history: list[dict[str, str]] = []
    for q, a in shots:
        history.append(build_messages(q, None, system)[-1])
        history.append({"role": "assistant", "content": a})

    def build(question: str, passages: Sequence[Any] | None) -> Messages:
        return build_messages(question, passages, system, history)

    return build
