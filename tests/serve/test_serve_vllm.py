"""The vLLM backend up to the vLLM call: argument pass-through, selection, and the streaming path.

vLLM cannot run here (CUDA only), so its modules are faked in `sys.modules` with the documented surface
(`AsyncEngineArgs`, `AsyncLLM.from_engine_args`, `generate`, `abort`, `SamplingParams`, `RequestOutputKind`);
everything of ours around them is real, through a real uvicorn server and the openai client.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from serve.types import SamplingOptions


@dataclass
class _Out:
    text: str
    token_ids: list[int]
    finish_reason: str | None = None


@dataclass
class _RequestOutput:
    outputs: list[_Out]
    finished: bool


@dataclass
class FakeEngine:
    args: object
    calls: list = field(default_factory=list)
    aborted: list = field(default_factory=list)
    shut: bool = False

    async def generate(self, request_id, prompt, sampling_params):
        self.calls.append((request_id, prompt, sampling_params))
        pieces = ["Bright", "water", "!"]
        for i, p in enumerate(pieces):
            last = i == len(pieces) - 1
            yield _RequestOutput([_Out(p, [i], "length" if last else None)], finished=last)

    async def abort(self, request_id):
        self.aborted.append(request_id)

    def shutdown(self):
        self.shut = True


@pytest.fixture
def fake_vllm(monkeypatch):
    engines: list[FakeEngine] = []

    class AsyncEngineArgs:
        def __init__(self, **kw):
            self.kw = kw

    class AsyncLLM:
        @classmethod
        def from_engine_args(cls, args):
            engines.append(FakeEngine(args))
            return engines[-1]

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    kinds = types.SimpleNamespace(DELTA="delta", CUMULATIVE="cumulative")
    mods = {
        "vllm": types.SimpleNamespace(SamplingParams=SamplingParams, __version__="fake"),
        "vllm.engine": types.SimpleNamespace(),
        "vllm.engine.arg_utils": types.SimpleNamespace(AsyncEngineArgs=AsyncEngineArgs),
        "vllm.v1": types.SimpleNamespace(),
        "vllm.v1.engine": types.SimpleNamespace(),
        "vllm.v1.engine.async_llm": types.SimpleNamespace(AsyncLLM=AsyncLLM),
        "vllm.sampling_params": types.SimpleNamespace(RequestOutputKind=kinds),
    }
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return engines


ENGINE_CASES = [
    ({}, {"tensor_parallel_size": 1, "pipeline_parallel_size": 1, "gpu_memory_utilization": 0.9}),
    (
        {
            "tensor_parallel_size": 4,
            "pipeline_parallel_size": 2,
            "max_model_len": 4096,
            "gpu_memory_utilization": 0.5,
        },
        {
            "tensor_parallel_size": 4,
            "pipeline_parallel_size": 2,
            "max_model_len": 4096,
            "gpu_memory_utilization": 0.5,
        },
    ),
]


@pytest.mark.parametrize("options,expected", ENGINE_CASES)
def test_engine_arguments_pass_through(options, expected):
    from serve.vllm_backend import engine_kwargs

    kw = engine_kwargs("/m", **options)
    assert kw["model"] == kw["tokenizer"] == "/m"
    assert {k: kw[k] for k in expected} == expected
    assert ("max_model_len" in kw) == ("max_model_len" in options)


@pytest.mark.parametrize(
    "bad,name",
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"max_model_len": 0}, "max_model_len"),
    ],
)
def test_engine_arguments_are_validated_by_name(bad, name):
    from serve.vllm_backend import engine_kwargs

    with pytest.raises(ValueError, match=f"`{name}`"):
        engine_kwargs("/m", **bad)


def test_sampling_arguments():
    from serve.vllm_backend import sampling_kwargs

    kw = sampling_kwargs(SamplingOptions(max_tokens=7, stop=("\n",), seed=3, temperature=0.5, top_p=0.9))
    assert kw == {"n": 1, "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 3, "stop": ["\n"]}


def test_auto_picks_vllm_only_with_vllm_and_cuda(monkeypatch):
    import serve.llamacpp_engine as le
    import serve.vllm_backend as vb
    from serve.backends import resolve_backend

    monkeypatch.setattr(le, "available", lambda: False)  # the CPU choice is tested in test_serve_llamacpp.py
    for has_vllm, has_cuda, want in [
        (False, False, "transformers"),
        (True, False, "transformers"),
        (False, True, "transformers"),
        (True, True, "vllm"),
    ]:
        monkeypatch.setattr(vb, "is_vllm_available", lambda v=has_vllm: v)
        monkeypatch.setattr(vb, "cuda_available", lambda c=has_cuda: c)
        assert resolve_backend("auto") == want
    assert resolve_backend("openai") == "openai"


def test_missing_vllm_says_how_to_install(monkeypatch, chatty_generator):
    from serve.backends import load_backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'ragtune\[gpu\]'"):
        load_backend("vllm", chatty_generator)


def test_vllm_backend_through_the_server(fake_vllm, chatty_generator, index_dir, model_id, encoder):
    import openai
    from serve_helpers import uvicorn_in_thread

    from ragtune.prompt import build_messages
    from retriever import KnowledgeIndex, Retriever
    from serve import create_app
    from serve.hf_backend import TransformersBackend
    from serve.vllm_backend import VLLMBackend

    backend = VLLMBackend(chatty_generator, tensor_parallel_size=2, max_model_len=400)
    engine = fake_vllm[0]
    assert engine.args.kw["tensor_parallel_size"] == 2 and engine.args.kw["max_model_len"] == 400
    assert backend.max_context == 400
    app = create_app(model=chatty_generator, index=index_dir, backend=backend, poll_interval=0)
    with uvicorn_in_thread(app) as url, openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as c:
        msgs = [{"role": "user", "content": "What is the capital of Avalon?"}]
        r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=5, stop=["\n"], seed=4)
        chunks = list(c.chat.completions.create(model=model_id, messages=msgs, max_tokens=5, stream=True))
    assert r.choices[0].message.content == "Brightwater!" and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3 and r.model_extra["sources"][0]["doc_id"] == "avalon"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Brightwater!"
    _, prompt, params = engine.calls[0]
    retriever = Retriever(KnowledgeIndex.open(index_dir), encoder)
    passages = retriever.search(msgs[0]["content"], 4)
    retriever.close()
    # vLLM gets exactly the token ids the transformers backend would generate from
    expected = TransformersBackend(chatty_generator).prepare(build_messages(msgs[0]["content"], passages))
    assert prompt["prompt_token_ids"] == expected.prompt_ids and r.usage.prompt_tokens == len(
        expected.prompt_ids
    )
    assert params.kw["output_kind"] == "delta" and params.kw["stop"] == ["\n"] and params.kw["seed"] == 4
    assert params.kw["max_tokens"] == 5 and params.kw["temperature"] == 0.0
    assert engine.shut  # shut down with the app


def test_an_abandoned_vllm_stream_is_aborted(fake_vllm, chatty_generator):
    import asyncio

    from serve.vllm_backend import VLLMBackend

    backend = VLLMBackend(chatty_generator)

    async def main():
        agen = backend.stream(
            backend.prepare([{"role": "user", "content": "hi"}]), SamplingOptions(max_tokens=9)
        )
        assert (await anext(agen)).text == "Bright"
        await agen.aclose()

    asyncio.run(main())
    engine = fake_vllm[0]
    assert engine.aborted == [engine.calls[0][0]]


def _has_vllm_and_cuda() -> bool:
    from serve.vllm_backend import cuda_available, is_vllm_available

    return is_vllm_available() and cuda_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_vllm_and_cuda(), reason="needs vLLM and a CUDA device")
def test_real_vllm_greedy_matches_transformers(chatty_generator):
    from serve import load_generator

    msgs = [[{"role": "user", "content": q}] for q in ("What is the capital of Avalon?", "hi")]
    ref = load_generator(chatty_generator, prefill_precision="float32").generate(msgs, max_tokens=8)
    gen = load_generator(chatty_generator, backend="vllm", vllm_options={"gpu_memory_utilization": 0.3})
    try:
        got = gen.generate(msgs, max_tokens=8)
    finally:
        gen.close()
    # the same prompt tokens; the texts may differ: vLLM runs the fp32 checkpoint in half precision
    assert [c.prompt_tokens for c in got] == [c.prompt_tokens for c in ref]
    assert all(c.finish_reason in ("stop", "length") and 1 <= c.completion_tokens <= 8 for c in got)
