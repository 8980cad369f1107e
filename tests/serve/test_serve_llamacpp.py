"""The llama.cpp backend on tiny real models: GGUF export round trip (logits and greedy text against
transformers), LoRA adapters converted to GGUF and applied at run time, continuous batching (answers with and
without neighbours), cancellation freeing the slot, two adapters answering differently in one real server,
and the fallback when llama-cpp-python is missing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli
from serve_helpers import API_KEY, pick_stop

# The transformers backend's questions and its contract tests for max_tokens, stop sequences and a cancelled
# row, collected here too: pytest runs them with this module's `gen`, the llama.cpp backend.
from test_serve_backend import (  # noqa: F401
    QUESTIONS,
    msgs,
    test_a_cancelled_row_leaves_the_batch_and_the_others_finish,
    test_max_tokens_and_stop,
)

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def cache(module_tmp) -> Path:
    """The GGUF conversions of this module's tests, apart from the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAGTUNE_CACHE_DIR", str(out := module_tmp("gguf_cache")))
    yield out
    mp.undo()


@pytest.fixture(scope="module")
def gen(chatty_generator, cache):
    from serve import load_generator

    g = load_generator(chatty_generator, backend="llama.cpp", llamacpp_options={"gguf_type": "f32"})
    yield g
    asyncio.run(g.backend.aclose())


def _adapter(base: Path, out: Path, answer: str) -> Path:
    """A LoRA adapter trained (a few real steps) to answer every question with `answer`."""
    from tuner import train_generator

    rows = [{"question": q, "answer": answer} for q in QUESTIONS * 4]
    data = out.with_suffix(".jsonl")
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    train_generator(
        str(base),
        str(data),
        str(out),
        method="lora",
        max_steps=12,
        learning_rate=5e-2,
        batch_size=8,
        val_fraction=0,
        mode="closed-book",
    )
    return out


@pytest.fixture(scope="module")
def adapters(chatty_generator, module_tmp) -> dict[str, Path]:
    d = module_tmp("adapters")
    return {
        name: _adapter(chatty_generator, d / name, word)
        for name, word in (("a", "Brightwater"), ("b", "Tomas"))
    }


def test_greedy_matches_transformers_batched_or_alone(gen, hf):
    batch = gen.generate([msgs(q) for q in QUESTIONS], max_tokens=16)
    ref = hf.generate([msgs(q) for q in QUESTIONS], max_tokens=16)
    for q, c, r in zip(QUESTIONS, batch, ref):
        [solo] = gen.generate([msgs(q)], max_tokens=16)
        assert c == solo == r  # text, token counts and finish reason
    assert gen.backend.kind == "llama.cpp"


@pytest.mark.parametrize("qtype, tol", [("f32", 1e-3), ("f16", 5e-2), ("bf16", 0.5), ("q8_0", 0.5)])
def test_gguf_export_round_trip_logits(qtype, tol, chatty_generator, tmp_path):
    """`ragtune export --gguf` output loads in llama.cpp and its next-token logits are transformers' (to the
    precision of the type)."""
    import torch
    from transformers import AutoModelForCausalLM

    from serve.llamacpp_backend import LlamaCppBackend
    from serve.llamacpp_engine import Token

    out = tmp_path / f"{qtype}.gguf"
    from ragtune.gguf_files import write_gguf

    write_gguf(chatty_generator, out, qtype)
    be = LlamaCppBackend(out, max_batch_size=1)
    ids = be.prepare(msgs(QUESTIONS[1])).prompt_ids
    got = be.engine.decode([Token(t, i, 0, i == len(ids) - 1) for i, t in enumerate(ids)])[len(ids) - 1]
    be.engine.close()
    model = AutoModelForCausalLM.from_pretrained(str(chatty_generator)).eval()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0, -1].numpy()
    assert abs(got - ref).max() < tol
    assert int(got.argmax()) == int(ref.argmax())


def test_export_cli_writes_model_gguf_beside_the_merged_folder(chatty_generator, tmp_path, cache):
    import shutil

    folder = tmp_path / "merged"
    shutil.copytree(chatty_generator, folder)
    run_cli("export", "--model", str(folder), "--gguf", "q8_0")
    assert (folder / "model.gguf").is_file()
    from serve.llamacpp_models import resolve_files

    assert resolve_files(folder, {}).gguf == folder / "model.gguf"  # served as is, nothing converted
    assert not list(cache.glob("gguf/model-*-q8_0.gguf"))


@pytest.mark.parametrize(
    "model, gguf_type, want",
    [
        ("default", None, "f16"),  # RAG prompts prefill ~1.7x faster than the shipped Q4_1 on AVX2
        ("default", "shipped", "shipped"),  # the model's own file, as is
        ("folder", None, "f16"),
        ("folder", "q8_0", "q8_0"),
        ("folder", "shipped", "error"),  # only the default model ships a GGUF
    ],
)
def test_which_gguf_is_served(model, gguf_type, want, chatty_generator, cache):
    from ragtune import models
    from ragtune.errors import RagtuneError
    from serve.llamacpp_models import resolve_files

    path = "default" if model == "default" else chatty_generator
    if want == "error":
        with pytest.raises(RagtuneError, match="pick a type to convert to"):
            resolve_files(path, {}, gguf_type)
        return
    files = resolve_files(path, {}, gguf_type)
    if want == "shipped":
        assert files.gguf == models.gguf_path()
    else:
        assert files.gguf.parent == cache / "gguf" and files.gguf.name.endswith(f"-{want}.gguf")
    want_dir = models.default_generator_dir() if model == "default" else chatty_generator
    assert files.tokenizer_dir == want_dir


def test_lora_gguf_applies_the_adapter_like_peft(chatty_generator, adapters, cache):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from serve.llamacpp_backend import LlamaCppBackend
    from serve.llamacpp_engine import Token

    be = LlamaCppBackend(chatty_generator, loras={"a": adapters["a"]}, gguf_type="f32", max_batch_size=2)
    ids = be.prepare(msgs(QUESTIONS[0])).prompt_ids
    toks = [Token(t, i, 0, i == len(ids) - 1) for i, t in enumerate(ids)]
    be.engine.use_adapter("a")
    got = be.engine.decode(toks)[len(ids) - 1]
    be.engine.forget(0)
    be.engine.use_adapter(None)
    plain = be.engine.decode(toks)[len(ids) - 1]
    be.engine.close()
    base = AutoModelForCausalLM.from_pretrained(str(chatty_generator)).eval()
    with torch.no_grad():
        ref_base = base(torch.tensor([ids])).logits[0, -1].numpy()
        ref = PeftModel.from_pretrained(base, str(adapters["a"])).eval()(torch.tensor([ids])).logits[0, -1]
    assert abs(plain - ref_base).max() < 1e-3
    assert abs(got - ref.numpy()).max() < 1e-2
    assert abs(got - plain).max() > 0.1  # the adapter changed the logits: the parity is not vacuous


def test_cancelling_a_stream_frees_its_slot_at_once(chatty_generator, cache):
    """One slot: a request whose client leaves must free it, or the next request would wait forever."""
    from serve.llamacpp_backend import LlamaCppBackend
    from serve.types import SamplingOptions

    be = LlamaCppBackend(chatty_generator, gguf_type="f32", max_batch_size=1, reuse_prefixes=False)

    async def scenario():
        long = be.stream(be.prepare(msgs("hi")), SamplingOptions(max_tokens=400))
        first = await anext(long)
        await long.aclose()  # the client went away after its first piece
        parts = [d async for d in be.stream(be.prepare(msgs("Tomas")), SamplingOptions(max_tokens=8))]
        return first, parts

    first, parts = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert first.completion_tokens < 400 and parts[-1].finish_reason == "length"
    assert be.tokens_generated < 100  # the abandoned request stopped at once
    # the finished request's KV cells are freed by the worker right after its last piece is sent
    deadline = time.monotonic() + 30
    while be.engine.lib.llama_memory_seq_pos_max(be.engine.mem, 0) != -1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert be.engine.lib.llama_memory_seq_pos_max(be.engine.mem, 0) == -1
    asyncio.run(be.aclose())


def test_a_follow_up_turn_reuses_its_history_and_answers_the_same(chatty_generator, cache):
    """Prefix reuse: the second turn resends the first; its prompt is prefilled only past what the slot holds,
    and the answers equal those of a backend that prefills everything."""
    from serve import load_generator

    opts = {"gguf_type": "f32"}
    reuse = load_generator(chatty_generator, backend="llama.cpp", max_batch_size=2, llamacpp_options=opts)
    fresh = load_generator(
        chatty_generator, backend="llama.cpp", max_batch_size=2, prefix_cache_mb=0, llamacpp_options=opts
    )
    try:
        first = msgs(QUESTIONS[0])
        [a1] = reuse.generate([first], max_tokens=12)
        assert reuse.backend.prompt_tokens_reused == 0
        n_first = len(reuse.backend.prepare(first).prompt_ids)
        follow = [
            *first,
            {"role": "assistant", "content": a1.text},
            {"role": "user", "content": QUESTIONS[1]},
        ]
        [a2] = reuse.generate([follow], max_tokens=12)
        [b1] = fresh.generate([first], max_tokens=12)
        [b2] = fresh.generate([follow], max_tokens=12)
        assert (a1.text, a2.text) == (b1.text, b2.text)
        assert reuse.backend.prompt_tokens_reused >= n_first - 1  # at least the first turn's prompt
        assert fresh.backend.prompt_tokens_reused == 0
        other = msgs("Something else entirely, asked afresh")
        [c] = reuse.generate([other], max_tokens=12)
        [d] = fresh.generate([other], max_tokens=12)
        assert c.text == d.text  # a slot whose tokens diverge early is trimmed, not misread
    finally:
        asyncio.run(reuse.backend.aclose())
        asyncio.run(fresh.backend.aclose())


def test_a_step_decodes_one_batch_of_tokens_whatever_the_number_of_adapters(
    chatty_generator, adapters, cache
):
    """Three prompts prefilling at once under the base and two adapters: the adapters still decode in calls
    of their own, but one step's calls together hold at most `n_batch` tokens (one budget, not one per
    adapter), every prompt token is decoded once, and the answers are those each request gets alone."""
    from serve.llamacpp_backend import LlamaCppBackend
    from serve.types import SamplingOptions

    be = LlamaCppBackend(
        chatty_generator,
        loras={"a": adapters["a"], "b": adapters["b"]},
        gguf_type="f32",
        max_batch_size=4,
        prefill_chunk_tokens=8,
        reuse_prefixes=False,
    )
    prepared = []
    for adapter in (None, "a", "b"):
        p = be.prepare(msgs(QUESTIONS[0]))
        p.extra["adapter"] = adapter
        prepared.append(p)
    n_prompt = len(prepared[0].prompt_ids)  # one question for all three
    steps: list[list[tuple[int, int]]] = []  # per step, per decode call: (prompt tokens, all tokens)
    step, decode = be._step, be.engine.decode

    def recording_step(running, free):
        steps.append([])
        step(running, free)

    def recording_decode(tokens):
        steps[-1].append((sum(t.pos < n_prompt for t in tokens), len(tokens)))
        return decode(tokens)

    be._step, be.engine.decode = recording_step, recording_decode

    async def answer(p):
        return "".join([d.text async for d in be.stream(p, SamplingOptions(max_tokens=6))])

    async def together():
        return await asyncio.gather(*(answer(p) for p in prepared))

    try:
        texts = asyncio.run(asyncio.wait_for(together(), 120))
        assert max(len(calls) for calls in steps) == 3  # base, a and b in one step
        assert max(sum(n for _, n in calls) for calls in steps) <= be.engine.n_batch == 12
        assert sum(p for calls in steps for p, _ in calls) == 3 * n_prompt
        alone = [asyncio.run(answer(p)) for p in prepared]
        assert texts == alone and len(set(texts)) == 3  # three models, three answers
    finally:
        asyncio.run(be.aclose())


def test_seeded_sampling_reruns_are_identical(gen):
    s1 = gen.generate([msgs("hi")] * 2, max_tokens=12, seed=5, temperature=1.0)
    s2 = gen.generate([msgs("hi")], max_tokens=12, seed=5, temperature=1.0)
    s3 = gen.generate([msgs("hi")], max_tokens=12, seed=6, temperature=1.0)
    assert s1[0] == s1[1] == s2[0] and s3[0].text != s2[0].text


def test_two_adapters_answer_differently_in_one_server(chatty_generator, adapters, index_dir, cache):
    import httpx
    from openai import NotFoundError, OpenAI

    from serve import start_server

    handle = start_server(
        chatty_generator,
        index_dir,
        api_key=API_KEY,
        extra_args=[
            "--backend",
            "llama.cpp",
            "--gguf-type",
            "f32",
            "--poll-interval",
            "0",
            "--lora",
            f"a={adapters['a']}",
            "--lora",
            f"b={adapters['b']}",
        ],
        env={"RAGTUNE_CACHE_DIR": str(cache)},
    )
    try:
        assert httpx.get(f"{handle.url}/readyz", timeout=10).json()["backend"] == "llama.cpp"
        with OpenAI(base_url=handle.base_url, api_key=API_KEY, max_retries=0, timeout=60) as c:
            base = Path(chatty_generator).name
            listed = {m.id: m.model_extra.get("parent") for m in c.models.list().data}
            assert listed == {base: None, "a": base, "b": base}
            question = [{"role": "user", "content": QUESTIONS[3]}]
            answers = {}
            for name in (base, "a", "b"):
                r = c.chat.completions.create(
                    model=name, messages=question, max_tokens=12, extra_body={"retrieval": False}
                )
                assert r.model == name
                answers[name] = r.choices[0].message.content
            assert answers["a"].startswith("Bright") and answers["b"].startswith("Tom"), answers
            assert answers[base] != answers["a"]
            # streaming with sources answers the same through an adapter or the base; stops cut the base's
            for name in ("a", base):
                kw = {"model": name, "messages": question, "max_tokens": 16}
                whole = c.chat.completions.create(**kw)
                chunks = list(c.chat.completions.create(**kw, stream=True))
                assert chunks[0].model_extra["sources"] == whole.model_extra["sources"] != []
                text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
                assert text == whole.choices[0].message.content
            stop = pick_stop(text)
            cut = c.chat.completions.create(**kw, stop=[stop])
            assert cut.choices[0].message.content == text[: text.find(stop)]
            with pytest.raises(NotFoundError, match="'a', 'b'"):
                c.chat.completions.create(model="c", messages=question, max_tokens=4)
    finally:
        handle.stop()


@pytest.mark.parametrize(
    "installed, flags, model, want",
    [
        (True, "fpu avx2 fma", "default", "llama.cpp"),  # no native bf16: llama.cpp decodes ~3.6x faster
        (True, "fpu avx2 avx512f avx512_bf16", "default", "transformers"),  # bf16 prefill ~3x faster
        (True, "fpu avx2 amx_bf16", "default", "transformers"),
        (False, "fpu avx2 fma", "default", "transformers"),  # not installed (or its build failed)
        (True, "fpu avx2 fma", "gguf", "llama.cpp"),
        (True, "fpu avx2 fma", "llama-folder", "llama.cpp"),  # gets a GGUF by conversion
        (True, "fpu avx2 fma", "other-folder", "transformers"),  # no GGUF writer for its architecture
    ],
)
def test_auto_on_a_cpu(installed, flags, model, want, chatty_generator, tmp_path):
    from serve.backends import auto_cpu_backend

    paths = {"default": "default", "llama-folder": chatty_generator}
    paths["gguf"] = tmp_path / "m.gguf"
    paths["gguf"].write_bytes(b"GGUF")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    paths["other-folder"] = other
    cpuinfo = f"processor\t: 0\nflags\t\t: {flags}\n"
    assert auto_cpu_backend(paths[model], installed, cpuinfo) == want


def test_auto_falls_back_to_transformers_without_llama_cpp():
    """A failed or skipped compile leaves the package missing: `auto` serves with transformers, and asking for
    llama.cpp says how to install it."""
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from serve.backends import resolve_backend\n"
        "from serve.llamacpp_engine import LlamaEngine\n"
        "print(resolve_backend('auto', 'default'))\n"
        "try:\n    LlamaEngine('x.gguf', n_seq=1, ctx_per_seq=64, n_batch=8, threads=1)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    assert first == "transformers"
    assert second.startswith("RagtuneError") and "make llamacpp" in second


def test_a_failed_compile_never_breaks_the_install(tmp_path):
    """`make llamacpp` (and `make install LLAMACPP=1`) run scripts/install-llamacpp.sh; when the build fails,
    the script exits 0, says why and keeps the compiler's error in its log. The Python it is given stands in for one whose pip build of
    llama-cpp-python fails: it compiles a C file that does not compile (a real compiler error)."""
    bad = tmp_path / "ggml.c"
    bad.write_text('#error "this CPU feature is not supported"\n')
    py = tmp_path / "python"
    py.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *"pip install"*) exec cc -c {bad} -o {tmp_path}/ggml.o ;;\n'
        "  *) exit 1 ;;\n"  # `import llama_cpp` fails: not installed
        "esac\n"
    )
    py.chmod(0o755)
    log = tmp_path / "llamacpp-build.log"
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-llamacpp.sh"), str(py), str(log)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "llama.cpp backend not installed: the build failed" in out.stdout
    assert "this CPU feature is not supported" in log.read_text()
