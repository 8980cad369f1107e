"""The engine adapters of bench/engines.py: each builds a `run(ids, n_new) -> (ttft_s, decode_s, tokens)`
for one generation engine (transformers, a plain torch loop, CTranslate2, onnxruntime-genai, llama.cpp,
ragtune's serve backends), greedy with EOS suppressed so that every engine decodes the same number of tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CLOSERS: list[Callable[[], object]] = []  # engines with threads of their own, stopped at the end

# --- engines: each returns run(ids, n_new) -> (ttft_s, decode_s, tokens) -------------------------------
Run = Callable[[list[int], int], tuple[float, float, list[int]]]


def torch_loop(model, eos: list[int]) -> Run:
    """A plain greedy KV-cache loop (prefill, then one token per step), EOS suppressed."""
    import torch

    def run(ids, n_new):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
            toks = []
            logits, past = out.logits[:, -1, :], out.past_key_values
            for i in range(n_new):
                logits[:, eos] = float("-inf")
                tok = int(logits.argmax(-1))
                toks.append(tok)
                if i == 0:
                    t1 = time.perf_counter()
                if i + 1 == n_new:
                    break
                out = model(input_ids=torch.tensor([[tok]]), past_key_values=past, use_cache=True)
                logits, past = out.logits[:, -1, :], out.past_key_values
        return t1 - t0, time.perf_counter() - t1, toks

    return run


def hf_generate(model) -> Run:
    """`generate` has no first-token hook: TTFT is a 1-token call, decode the rest of an n-token call."""
    import torch
    from transformers import GenerationConfig

    def call(ids, n):
        cfg = GenerationConfig(
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            eos_token_id=model.generation_config.eos_token_id,
            pad_token_id=2,
        )
        t = time.perf_counter()
        with torch.inference_mode():
            toks = model.generate(torch.tensor([ids]), generation_config=cfg)[0, len(ids) :].tolist()
        return time.perf_counter() - t, toks

    def run(ids, n_new):
        t1, _ = call(ids, 1)
        tn, toks = call(ids, n_new)
        return t1, max(tn - t1, 1e-9), toks

    return run


def hf_cb(model) -> Run:
    """transformers' continuous batching: one persistent manager (as `transformers serve` keeps), streamed.

    Its EOS is disabled (-1) rather than suppressed: the tokens after the model's own EOS differ."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    cfg = GenerationConfig(max_new_tokens=64, do_sample=False, eos_token_id=-1, pad_token_id=2)
    # left to itself it sizes the paged cache from the free memory (13 GB here, and the OOM killer): 8 pages
    # of 256 tokens hold a 1,000-token request
    cb = ContinuousBatchingConfig(num_blocks=8, max_batch_tokens=1024, max_requests_per_batch=4)
    manager = model.init_continuous_batching(generation_config=cfg, continuous_batching_config=cb)
    manager.start()
    CLOSERS.append(lambda: manager.stop(block=True, timeout=30))

    def run(ids, n_new):
        t0 = time.perf_counter()
        rid = manager.add_request(list(ids), max_new_tokens=n_new, streaming=True, eos_token_id=-1)
        t1, toks = None, []
        for res in manager.request_id_iter(rid):
            if t1 is None and res.generated_tokens:
                t1 = time.perf_counter()
            toks = list(res.generated_tokens)
        return t1 - t0, time.perf_counter() - t1, toks

    return run


def serve_backend_run(backend, eos: list[int]) -> Run:
    """A serve backend's own path (`run_batch` for transformers, `stream` otherwise), timed at its deltas."""
    from serve.decoding import Job
    from serve.types import SamplingOptions

    tok = backend.tokenizer

    def run(ids, n_new):
        times, texts = [], []
        job = Job(
            list(ids),
            SamplingOptions(max_tokens=n_new, seed=0),
            lambda d: (times.append(time.perf_counter()), texts.append(d.text)),
        )
        t0 = time.perf_counter()
        backend.run_batch([job])
        # one delta per token when nothing is held back; the text is re-tokenized for the agreement check
        return times[0] - t0, times[-1] - times[0], tok.encode("".join(texts), add_special_tokens=False)

    return run


def ct2_convert(model_dir: Path, out: Path, quantization: str) -> Path:
    if (out / "model.bin").exists():
        return out
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(model_dir), low_cpu_mem_usage=True).convert(
        str(out), quantization=quantization, force=True
    )
    return out


def ct2_run(path: Path, compute_type: str, threads: int, tokenizer) -> Run:
    import ctranslate2

    gen = ctranslate2.Generator(
        str(path), device="cpu", compute_type=compute_type, intra_threads=threads, inter_threads=1
    )

    def run(ids, n_new):
        toks = tokenizer.convert_ids_to_tokens(ids)
        out, t0 = [], time.perf_counter()
        for step in gen.generate_tokens(toks, max_length=n_new, min_length=n_new, sampling_topk=1):
            if not out:
                t1 = time.perf_counter()
            out.append(step.token_id)
        return t1 - t0, time.perf_counter() - t1, out

    return run


def ort_build(model_dir: Path, out: Path, precision: str) -> Path:
    if (out / "genai_config.json").exists():
        return out
    log = out.with_suffix(".log")
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i",
        str(model_dir),
        "-o",
        str(out),
        "-p",
        precision,
        "-e",
        "cpu",
        "-c",
        str(out.parent / "ort-cache"),
    ]
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"model builder exited {rc}: {' '.join(tail)[:200]} (log: {log})")
    return out


def ort_run(path: Path, threads: int) -> Run:
    import onnxruntime_genai as og

    cfg = og.Config(str(path))
    cfg.overlay(
        json.dumps(
            {
                "model": {
                    "decoder": {
                        "session_options": {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
                    }
                }
            }
        )
    )
    model = og.Model(cfg)

    def run(ids, n_new):
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + n_new, min_length=len(ids) + n_new, do_sample=False)
        t0 = time.perf_counter()
        gen = og.Generator(model, params)
        gen.append_tokens(ids)
        out = []
        while not gen.is_done() and len(out) < n_new:
            gen.generate_next_token()
            out.append(int(gen.get_next_tokens()[0]))
            if len(out) == 1:
                t1 = time.perf_counter()
        return t1 - t0, time.perf_counter() - t1, out

    return run


def llamacpp_run(gguf: Path, threads: int, eos: list[int]) -> Run:
    """llama.cpp (llama-cpp-python, an optional compile) on a GGUF; the default generator's own Q4_1 file
    holds exactly the weights ragtune dequantises, so only the arithmetic differs. No prompt reuse between
    calls (`reset`), EOS suppressed by a logits processor, greedy."""
    import numpy as np
    from llama_cpp import Llama, LogitsProcessorList

    llm = Llama(
        model_path=str(gguf),
        n_ctx=2048,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        verbose=False,
    )

    def no_eos(_ids, logits):
        logits[eos] = -np.inf
        return logits

    def run(ids, n_new):
        llm.reset()  # forget the previous prompt: every call prefills from scratch
        out, t0 = [], time.perf_counter()
        for tok in llm.generate(ids, top_k=1, temp=0.0, logits_processor=LogitsProcessorList([no_eos])):
            if not out:
                t1 = time.perf_counter()
            out.append(int(tok))
            if len(out) == n_new:
                break
        return t1 - t0, time.perf_counter() - t1, out

    return run


def _serve_hf(backend, eos: list[int]) -> Run:
    import torch

    import serve.hf_backend as hb

    plain = hb.sample_next

    def no_eos(logits, rows):  # the baseline decodes past EOS; make today's backend do the same
        return plain(logits.index_fill(-1, torch.tensor(eos), float("-inf")), rows)

    hb.sample_next = no_eos
    return serve_backend_run(backend, eos)


def _paged(model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation="paged|sdpa", local_files_only=True
    )
    return m.eval()


def _ct2(model_dir: Path, work: Path, q: str, threads: int, tok) -> Run:
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types("cpu")
    if q not in supported:
        raise RuntimeError(f"compute type {q} not supported on this CPU (supported: {sorted(supported)})")
    stored = "int8" if q.startswith("int8") else q
    return ct2_run(ct2_convert(model_dir, work / f"ct2-{stored}", stored), q, threads, tok)


def _serve_ct2(model_dir: Path, eos: list[int]) -> Run:
    from serve.ct2_backend import CTranslate2Backend  # absent until the backend exists

    backend = CTranslate2Backend(model_dir, max_batch_size=1)  # int8 where the CPU has it
    backend.suppress_sequences = [[t] for t in backend.tokenizer.convert_ids_to_tokens(eos)]  # as the others
    return serve_backend_run(backend, eos)


def _gguf(model_dir: Path, work: Path, qtype: str) -> Path:
    from ragtune.gguf_files import write_gguf

    out = work / f"model-{qtype}.gguf"
    return out if out.is_file() else write_gguf(model_dir, out, qtype)


def _serve_llamacpp(gguf: Path, model_dir: Path, threads: int, eos: list[int]) -> Run:
    """ragtune's llama.cpp backend at batch 1 on `gguf`, prompts rendered by `model_dir`'s tokenizer (the
    file beside it gives the same ids); EOS suppressed as for the others."""
    import shutil

    import serve.llamacpp_backend as lb

    folder = gguf.parent / f"{gguf.stem}-serve"
    folder.mkdir(exist_ok=True)
    for f in model_dir.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, folder / f.name)
    if not (folder / "model.gguf").exists():
        (folder / "model.gguf").symlink_to(gguf.resolve())
    plain = lb.next_tokens

    def no_eos(logits, rows):
        logits[:, eos] = float("-inf")
        return plain(logits, rows)

    lb.next_tokens = no_eos
    backend = lb.LlamaCppBackend(folder / "model.gguf", max_batch_size=1, threads=threads)
    return serve_backend_run(backend, eos)
