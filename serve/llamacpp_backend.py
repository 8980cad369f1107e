"""The llama.cpp backend (CPU): GGUF weights, continuous batching over llama.cpp's batch API, LoRA adapters
picked per request without merging.

Why: on a CPU, llama.cpp's quantised kernels read fewer bytes per weight than torch can (bench/engines.py,
bench/serve.py; docs/llamacpp.md has the figures). Prompts are rendered and tokenized exactly as the
transformers backend does (`render_prompt` with the model's Hugging Face tokenizer), and every request keeps
the same `RowState` (stops, EOS, max_tokens, streaming hold-back, cancellation, seeded sampling), so the
two backends differ only in the arithmetic; transformers stays the reference (tests compare them).

Scheduling (one worker thread owns the llama.cpp context): each request gets a sequence slot with its own
KV cells. Every step builds one batch per adapter in use: the last sampled token of every decoding
sequence first, then the next chunk of the oldest prompts still being prefilled, up to `n_batch` tokens in
the whole step, whatever the number of adapters.
New requests join between steps; a finished or cancelled request's cells are freed at once and its slot
taken by the next waiting request. Sampling happens on our side from each sequence's logits.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import RagtuneError
from ragtune.prompt import control_token_strings
from serve.decoding import Job, RowState, sample_next
from serve.hf_backend import TransformersBackend
from serve.llamacpp_engine import LlamaEngine, Token
from serve.llamacpp_models import LlamaModelFiles, resolve_files
from serve.types import Delta

logger = logging.getLogger(__name__)


@dataclass
class _Seq:
    """One request in a slot: prompt tokens [0, done) are in the KV cache; `next_token` is sampled but not
    yet decoded."""

    row: RowState
    slot: int
    adapter: str | None
    done: int = 0
    next_token: int | None = None

    @property
    def prefilling(self) -> bool:
        return self.done < len(self.row.job.prompt_ids)


class LlamaCppBackend(TransformersBackend):
    """Shares the transformers backend's request queue, streaming, sync batch API and closing; the model,
    the slots and the step loop are llama.cpp's."""

    kind = "llama.cpp"

    def __init__(
        self,
        model: str | Path,
        *,
        loras: dict[str, str | Path] | None = None,
        gguf_type: str | None = None,
        max_batch_size: int = 16,
        batch_window_ms: float = 10.0,
        ctx_per_seq: int = 2048,
        prefill_chunk_tokens: int = 256,
        threads: int | None = None,
        model_id: str | None = None,
        on_batch: Callable[[int], None] | None = None,
        reuse_prefixes: bool = True,
    ):
        from transformers import AutoTokenizer

        if max_batch_size < 1 or prefill_chunk_tokens < 1:
            raise ValueError("`max_batch_size` and `prefill_chunk_tokens` should be positive integers")
        files: LlamaModelFiles = resolve_files(model, loras or {}, gguf_type)
        self.files = files
        self.model_dir = files.tokenizer_dir
        self.model_id = model_id or files.name
        self.tokenizer = AutoTokenizer.from_pretrained(str(files.tokenizer_dir), **files.tokenizer_kwargs)
        self._specials = control_token_strings(self.tokenizer)
        self.eos_ids = files.eos_ids(self.tokenizer)
        self.threads = threads or _default_threads()
        self.engine = LlamaEngine(
            files.gguf,
            n_seq=max_batch_size,
            ctx_per_seq=ctx_per_seq,
            n_batch=prefill_chunk_tokens + max_batch_size,
            threads=self.threads,
            loras=files.loras,
        )
        self.max_context = self.engine.ctx_per_seq
        self.max_batch_size = max_batch_size
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.batch_window = batch_window_ms / 1000.0
        self.on_batch = on_batch
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._model_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.reuse_prefixes = reuse_prefixes
        self._resident: list[tuple[str | None, list[int]]] = [(None, [])] * max_batch_size  # per slot
        self.tokens_generated = 0
        self.prompt_tokens_reused = 0
        self.batches_run = 0
        self.decode_calls = 0

    @property
    def adapters(self) -> list[str]:
        """The LoRA adapters a request may name as its `model`."""
        return list(self.files.loras)

    def _job(self, prepared, opts, sink) -> Job:
        job = super()._job(prepared, opts, sink)
        job.adapter = prepared.extra.get("adapter")
        return job

    # --- the loop ----------------------------------------------------------------------------------
    def _work(self) -> None:
        """Continuous batching: collect newcomers (blocking only when idle), then one step."""
        running: list[_Seq] = []
        waiting: deque[Job] = deque()
        free = list(range(self.max_batch_size))
        closing = False
        while not (closing and not running and not waiting):
            room = self.max_batch_size - len(running) - len(waiting)
            block = not running and not waiting and not closing
            jobs, stop = self._collect(block=block, room=room) if room > 0 else ([], False)
            closing = closing or stop
            waiting.extend(jobs)
            try:
                self._admit_waiting(waiting, running, free)
                if running:
                    self._step(running, free)
            except Exception as e:  # the worker must survive: fail what runs, keep serving the next
                logger.exception("llama.cpp step failed")
                for s in running:
                    if not s.row.done:
                        s.row.fail(f"generation failed: {type(e).__name__}: {e}")
                free = list(range(self.max_batch_size))
                for slot in free:
                    self._drop(slot)
                running = []

    def _admit_waiting(self, waiting: deque[Job], running: list[_Seq], free: list[int]) -> None:
        before = len(running)
        while waiting and free:
            job = waiting.popleft()
            rows = self._admit([job])  # finishes the cancelled and the over-long at once
            if not rows:
                continue
            if job.adapter is not None and job.adapter not in self.files.loras:
                rows[0].fail(f"no LoRA adapter named {job.adapter!r} is loaded")
                continue
            slot, keep = self._pick_slot(free, job)
            running.append(_Seq(rows[0], slot, job.adapter, done=keep))
            self.batches_run += 1
        if self.on_batch is not None and len(running) > before:  # the batch grew: one observation, as hf's
            self.on_batch(len(running))

    def _step(self, running: list[_Seq], free: list[int]) -> None:
        """Drop the cancelled, then one decode per adapter in use, then sample for what got logits."""
        for s in running:
            if not s.row.done and s.row.job.cancelled.is_set():
                s.row.cancel_now()
        self._release(running, free)
        live = [s for s in running if not s.row.done]
        chunks = self._prefill_chunks(live)
        for adapter in dict.fromkeys(s.adapter for s in live):
            tokens, owners = self._batch_for([s for s in live if s.adapter == adapter], chunks)
            if not tokens:
                continue
            with self._model_lock:
                self.engine.use_adapter(adapter)
                logits = self.engine.decode(tokens)
            self.decode_calls += 1
            self._sample([(owners[i], logits[i]) for i in sorted(logits)])
        self._release(running, free)

    def _prefill_chunks(self, live: list[_Seq]) -> dict[int, int]:
        """How many prompt tokens each prefilling sequence (by slot) decodes this step: the oldest first, at
        most `prefill_chunk_tokens` each, within one budget for the whole step. The budget is shared by the
        adapters' decode calls, so a step costs the same with one adapter in use or three: a budget per call
        made every decoding answer wait for up to one chunk per adapter (bench/serve.py's soak, two adapters beside
        the base: TPOT p50 1.6 s before, 0.55-0.66 s since; docs/llamacpp.md)."""
        budget = self.engine.n_batch - sum(s.next_token is not None for s in live)
        chunks = {}
        for s in live:
            if budget <= 0:
                break
            if s.prefilling:
                n = min(len(s.row.job.prompt_ids) - s.done, budget, self.prefill_chunk_tokens)
                chunks[s.slot] = n
                budget -= n
        return chunks

    def _batch_for(self, group: list[_Seq], chunks: dict[int, int]) -> tuple[list[Token], list[_Seq]]:
        """The decoding sequences' next tokens, then the planned prompt chunks, oldest first."""
        tokens: list[Token] = []
        owners: list[_Seq] = []
        for s in group:
            if s.next_token is not None:
                pos = len(s.row.job.prompt_ids) + len(s.row.ids) - 1
                tokens.append(Token(s.next_token, pos, s.slot, True))
                owners.append(s)
                s.next_token = None
        for s in group:
            if s.slot not in chunks:
                continue
            ids = s.row.job.prompt_ids
            end = s.done + chunks[s.slot]
            for p in range(s.done, end):
                tokens.append(Token(ids[p], p, s.slot, p == len(ids) - 1))
                owners.append(s)
            s.done = end
        return tokens, owners

    def _sample(self, got: list[tuple[_Seq, object]]) -> None:
        import numpy as np

        if not got:
            return
        rows = [s.row for s, _ in got]
        toks = next_tokens(np.stack([lg for _, lg in got]), rows)  # logits [B, vocab]
        self.tokens_generated += len(rows)
        for (s, _), t in zip(got, toks):
            s.row.push(int(t))
            if not s.row.done:
                s.next_token = int(t)

    def _pick_slot(self, free: list[int], job: Job) -> tuple[int, int]:
        """The free slot whose resident tokens share the longest prefix with the job's prompt (the oldest
        freed on a tie), and how many of its positions to keep: at most all but the prompt's last token,
        whose logits the first step needs."""
        head = job.prompt_ids[:-1]

        def shared(slot: int) -> int:
            adapter, tokens = self._resident[slot]
            if not self.reuse_prefixes or adapter != job.adapter:
                return 0
            return len(os.path.commonprefix([tokens, head]))  # commonprefix compares lists item by item

        keep, first = max((shared(slot), -i) for i, slot in enumerate(free))  # ties: the oldest freed
        slot = free.pop(-first)
        with self._model_lock:
            try:
                self.engine.forget(slot, keep)
            except RagtuneError:  # a memory that cannot drop a tail: start the slot afresh
                self.engine.forget(slot)
                keep = 0
        self._resident[slot] = (job.adapter, [])  # until released: the cells change as it runs
        self.prompt_tokens_reused += keep
        return slot, keep

    def _drop(self, slot: int) -> None:
        with self._model_lock:
            self.engine.forget(slot)
        self._resident[slot] = (None, [])

    def _release(self, running: list[_Seq], free: list[int]) -> None:
        for s in [s for s in running if s.row.done]:
            running.remove(s)
            if self.reuse_prefixes:  # the cells stay; record the tokens they hold
                self._resident[s.slot] = (s.adapter, _in_cache(s))
            else:
                self._drop(s.slot)
            free.append(s.slot)

    # --- the sync batch API (eval in process): the same loop, the caller waits for its jobs -----------
    def run_batch(self, jobs: list[Job]) -> None:
        events = []
        for job in jobs:
            done = threading.Event()
            events.append(done)
            job.sink = _signalling(job.sink, done)
        self._ensure_worker()
        for job in jobs:
            self._queue.put(job)
        for done in events:
            done.wait()

    async def aclose(self) -> None:
        await super().aclose()
        with self._model_lock:
            self.engine.close()


def next_tokens(logits, rows: list[RowState]) -> list[int]:
    """Greedy rows by numpy's argmax; sampled rows (temperature > 0) by the transformers backend's seeded
    sampler. Why not torch for all: torch's OpenMP threads would wake and spin beside llama.cpp's own on
    every step (two OpenMP runtimes in one process), slowing the next decode."""
    import numpy as np

    out = np.argmax(logits, axis=1).tolist()
    sampled = [r for r, st in enumerate(rows) if st.generator is not None]
    if sampled:
        import torch

        picked = sample_next(torch.from_numpy(logits[sampled]), [rows[r] for r in sampled]).tolist()
        for r, t in zip(sampled, picked):
            out[r] = int(t)
    return out


def _in_cache(s: _Seq) -> list[int]:
    """The tokens whose KV cells a finished sequence left in its slot: the prompt as far as it was
    prefilled, then every generated token but the last (sampled, never decoded)."""
    prompt = s.row.job.prompt_ids
    if s.prefilling:
        return list(prompt[: s.done])
    return list(prompt) + list(s.row.ids[:-1])


def _signalling(sink: Callable[[Delta], None], done: threading.Event) -> Callable[[Delta], None]:
    def wrapped(d: Delta) -> None:
        sink(d)
        if d.finish_reason is not None:
            done.set()

    return wrapped


def _default_threads() -> int:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    import os

    return len(os.sched_getaffinity(0))
