"""The transformers backend (CPU or GPU): dynamic batching with left padding and token streaming.

One worker thread owns the model. Requests wait in a queue; when idle, the worker takes the first, waits
a short collection window (`batch_window_ms`) for more, prefills them and stacks them into one
left-padded batch. Then it decodes step by step on the KV cache. Between two steps, requests that arrived
meanwhile are prefilled and join the running batch (their cache and mask left-padded to the same
length): continuous batching, so a newcomer does not wait for the longest running request. A row that
finishes (EOS, stop sequence, max_tokens, cancelled because its client went away) leaves the batch at once
(`Cache.batch_select_indices`). Each row streams its text through its own sink.

Chunked prefill: each prompt is prefilled alone, `prefill_chunk_tokens` tokens per forward, its chunks
aligned to its own first token; while rows are decoding, the oldest newcomer's next chunk runs between two
decode steps, so a 700-token RAG prompt delays the running rows' next tokens by a chunk's time per step
instead of the whole prompt's once. Because a prompt's prefill never shares a forward with another prompt,
its cache and first logits do not depend on what else the server was doing (bf16 prefill rounds
differently for different batch shapes, which made reruns under concurrent clients differ), and a prompt
that repeats a recent one's chunk-aligned prefix resumes after it (serve/prefix_cache.py). On CPU the
linear weights are bf16 where the CPU has native bf16 (serve/precision.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.prompt import control_token_strings, render_prompt
from serve.decoding import Job, RowState, eos_ids, sample_next
from serve.precision import prefill_autocast, resolve_weight_precision
from serve.prefix_cache import PrefixCache
from serve.torch_threads import single_threaded
from serve.types import Completion, Delta, GenerationFailed, Messages, Prepared, SamplingOptions

if TYPE_CHECKING:
    import torch
    from transformers.cache_utils import DynamicCache

logger = logging.getLogger(__name__)


class TransformersBackend:
    kind = "transformers"

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        max_batch_size: int = 16,
        batch_window_ms: float = 10.0,
        model_id: str | None = None,
        on_batch: Callable[[int], None] | None = None,
        cpu_kernels: bool = True,
        prefill_precision: str = "auto",
        prefill_chunk_tokens: int = 256,
        weight_precision: str = "auto",
        prefix_cache_mb: float = 512,
    ):
        import torch
        from transformers import AutoTokenizer

        if max_batch_size < 1:
            raise ValueError(
                f"`max_batch_size` should be a positive integer but the value passed is {max_batch_size}"
            )
        if prefill_chunk_tokens < 1:
            raise ValueError(
                f"`prefill_chunk_tokens` should be a positive integer, got {prefill_chunk_tokens}"
            )
        self.model_dir = Path(model_dir)
        self.model_id = model_id or self.model_dir.name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.tokenizer.padding_side = "left"
        self._specials = control_token_strings(self.tokenizer)
        on_gpu = self.device.startswith("cuda")
        self.weight_precision = resolve_weight_precision(weight_precision, prefill_precision, on_gpu)
        self.threads = torch.get_num_threads()  # the worker thread runs with the caller's setting
        with single_threaded():  # serve/torch_threads.py: the loading thread must not own an OpenMP team
            self.model, self._growing = self._load_model(fast=cpu_kernels and not on_gpu, on_gpu=on_gpu)
        self._autocast = prefill_autocast(prefill_precision, on_gpu)
        self.eos_ids = eos_ids(self.model, self.tokenizer)
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0) or None
        self.max_batch_size = max_batch_size
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20), prefill_chunk_tokens)
        self.batch_window = batch_window_ms / 1000.0
        self.on_batch = on_batch
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._model_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        # Prefill needs the logits of the last position only (saves the [batch, length, vocab] tensor).
        params = inspect.signature(self.model.forward).parameters
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self.tokens_generated = 0  # sampled tokens, all rows (cancelled rows stop adding to it)
        self.batches_run = 0

    def _load_model(self, fast: bool, on_gpu: bool) -> tuple[Any, bool]:
        """The model on its device, and whether it decodes on a GrowingCache. `fast`: the CPU decode path
        (serve/kv_cache.py, serve/cpu_linear.py); otherwise transformers' own attention, cache and linears."""
        import torch
        from transformers import AutoModelForCausalLM

        from serve.cpu_linear import bf16_linears, transpose_linears
        from serve.kv_cache import register_attention, supports_growing_cache

        attn = {"attn_implementation": register_attention()} if fast else {}
        model = AutoModelForCausalLM.from_pretrained(
            str(self.model_dir),
            local_files_only=True,
            dtype=torch.bfloat16 if on_gpu else torch.float32,
            **attn,
        )
        model.to(self.device).eval()
        if self.weight_precision == "bf16":
            bf16_linears(model)
        elif fast:
            transpose_linears(model)
        return model, fast and supports_growing_cache(model.config)

    # --- prompts --------------------------------------------------------------------------------
    def prepare(self, messages: Messages) -> Prepared:
        safe, ids = render_prompt(self.tokenizer, messages, self._specials)
        return Prepared(messages=safe, prompt_ids=ids)

    # --- async streaming (the server) --------------------------------------------------------------
    async def stream(self, prepared: Prepared, opts: SamplingOptions) -> AsyncIterator[Delta]:
        """Queue one request and yield its Deltas; closing this generator early cancels the generation."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Delta] = asyncio.Queue()
        job = self._job(prepared, opts, lambda d: loop.call_soon_threadsafe(inbox.put_nowait, d))
        self._ensure_worker()
        self._queue.put(job)
        try:
            while True:
                delta = await inbox.get()
                while delta.finish_reason is None and not inbox.empty():
                    # a slow consumer gets what is ready in one piece (fewer events, same text)
                    nxt = inbox.get_nowait()
                    delta = Delta(
                        delta.text + nxt.text, nxt.completion_tokens, nxt.finish_reason, error=nxt.error
                    )
                yield delta
                if delta.finish_reason is not None:
                    return
        finally:
            job.cancelled.set()  # no-op when finished; stops the row at its next step otherwise

    def _job(self, prepared: Prepared, opts: SamplingOptions, sink: Callable[[Delta], None]) -> Job:
        return Job(prepared.prompt_ids or [], opts, sink)

    # --- sync batch (eval, in process) -------------------------------------------------------------
    def generate_prepared(self, prompts: Sequence[list[int]], opts: SamplingOptions) -> list[Completion]:
        out: list[Completion] = []
        for start in range(0, len(prompts), self.max_batch_size):
            chunk = prompts[start : start + self.max_batch_size]
            parts: list[list[Delta]] = [[] for _ in chunk]
            jobs = [Job(list(p), opts, parts[i].append) for i, p in enumerate(chunk)]
            self.run_batch(jobs)
            for p, ds in zip(chunk, parts):
                last = ds[-1]
                if last.error:
                    raise GenerationFailed(last.error)
                out.append(
                    Completion(
                        "".join(d.text for d in ds),
                        len(p),
                        last.completion_tokens,
                        last.finish_reason or "stop",
                    )
                )
        return out

    # --- the batch loop -----------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="ragtune-batcher", daemon=True)
            self._worker.start()

    def _collect(self, block: bool, room: int) -> tuple[list[Job], bool]:
        """Jobs from the queue: when `block`, wait for one, then up to the collection window for more."""
        jobs: list[Job] = []
        deadline = time.monotonic() + self.batch_window
        while len(jobs) < room:
            try:
                if block and not jobs:
                    job = self._queue.get()
                elif block:
                    job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _work(self) -> None:
        """Continuous batching: new requests join the running batch between decode steps; while rows are
        decoding, one chunk of the oldest newcomer's prompt runs per decode step, so a long prompt does
        not stall the rows already decoding; with nothing decoding, the newcomers are prefilled at once."""
        import torch

        torch.set_num_threads(self.threads)  # a new thread starts from OpenMP's default, not the caller's
        batch: _Batch | None = None
        pending: deque[_Pending] = deque()
        closing = False
        while not (closing and batch is None and not pending):
            room = self.max_batch_size - len(batch.rows if batch else []) - len(pending)
            block = batch is None and not pending and not closing
            jobs, stop = self._collect(block=block, room=room) if room > 0 else ([], False)
            closing = closing or stop
            try:
                pending.extend(self._start_prefill(jobs))
                jobs = []  # their rows are in `pending` now
                if batch is None and pending:
                    batch = self._prefill_all(pending)
                elif pending and (fresh := self._advance(pending[0])) is not None:
                    pending.popleft()
                    batch = self._merge(batch, fresh)
                if batch is not None:
                    batch = self._step(batch)
            except Exception as e:  # the worker must survive: fail this batch, keep serving the next
                logger.exception("generation batch failed")
                self._fail_all(e, batch, list(pending), jobs)
                batch, pending = None, deque()

    def _fail_all(self, e: Exception, batch: _Batch | None, pending: list[_Pending], jobs: list[Job]) -> None:
        rows = (batch.rows if batch else []) + [p.row for p in pending]
        rows += [RowState(j, self.tokenizer, self.eos_ids, 1) for j in jobs]
        for st in rows:
            if not st.done:
                st.fail(f"generation failed: {type(e).__name__}: {e}")

    def run_batch(self, jobs: list[Job]) -> None:
        """Generate for `jobs` as one left-padded batch, streaming each row's text into its sink."""
        batch = self._prefill(jobs)
        while batch is not None:
            batch = self._step(batch)

    def _admit(self, jobs: list[Job]) -> list[RowState]:
        """A row per job, each capped to the room its prompt leaves; the cancelled and the ones with
        no room are finished at once, the rest returned to be generated."""
        rows = []
        for job in jobs:
            limit = job.opts.max_tokens
            if self.max_context:
                limit = min(limit, self.max_context - len(job.prompt_ids))
            st = RowState(job, self.tokenizer, self.eos_ids, limit)
            if job.cancelled.is_set():
                st.cancel_now()
            elif not job.prompt_ids or limit < 1:
                st.fail(
                    f"prompt of {len(job.prompt_ids)} tokens leaves no room in a context of "
                    f"{self.max_context}"
                )
            else:
                rows.append(st)
        return rows

    def _prefill(self, jobs: list[Job]) -> _Batch | None:
        """Prefill `jobs`, each alone, and stack them into one left-padded batch."""
        return self._prefill_all(deque(self._start_prefill(jobs)))

    def _prefill_all(self, pending: deque[_Pending]) -> _Batch | None:
        """Prefill every pending prompt to its end; one batch of them all. `pending` is emptied only once
        the batch stands, so a failure leaves every row there for `_fail_all`."""
        fresh = []
        for p in pending:
            while (one := self._advance(p)) is None:
                pass
            fresh.append(one)
        batch = fresh[0] if fresh else None
        for one in fresh[1:]:
            batch = self._merge(batch, one, report=False)
        pending.clear()
        if batch is not None and self.on_batch is not None:
            self.on_batch(len(batch.rows))
        return batch

    def _start_prefill(self, jobs: list[Job]) -> list[_Pending]:
        """A pending prefill per admitted job: its prompt as a [1, T] row, nothing in its cache yet."""
        import torch

        rows = self._admit(jobs)
        self.batches_run += bool(rows)
        out = []
        for st in rows:
            p = _Pending(st, torch.tensor([st.job.prompt_ids], device=self.device), self._new_cache())
            hit = self.prefix_cache.lookup(st.job.prompt_ids)
            if hit is not None:  # resume after the cached prefix (or skip the prefill: whole prompt)
                p.done, p.logits = hit.tokens, None if hit.logits is None else hit.logits.clone()
                for i, (k, v) in enumerate(hit.layers):
                    p.cache.update(k, v, i)
            out.append(p)
        return out

    def _advance(self, p: _Pending) -> _Batch | None:
        """Prefill the next `prefill_chunk_tokens` of `p`; a one-row batch once the whole prompt is in.

        The chunks start at the prompt's first token whatever else runs, so the result depends on the
        prompt alone: chunk boundaries (and bf16 rounding) never move with the server's load."""
        import torch

        from serve.kv_cache import to_float32

        if p.logits is not None:  # the whole prompt came from the prefix cache
            return self._prefilled(p, p.logits)
        end = min(p.ids.shape[1], p.done + self.prefill_chunk_tokens)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._autocast)
        with self._model_lock, torch.inference_mode(), autocast:
            last = end == p.ids.shape[1]  # only the last chunk needs logits: the others skip the head
            out = (self.model if last else self.model.base_model)(
                input_ids=p.ids[:, p.done : end],  # [1, chunk]
                position_ids=torch.arange(p.done, end, device=p.ids.device)[None],
                past_key_values=p.cache,
                use_cache=True,
                **(self._last_only if last else {}),
            )
        p.done = end
        if end < p.ids.shape[1]:
            return None
        if self._autocast:
            to_float32(p.cache)
        # out.logits: [1, 1, vocab] with logits_to_keep=1, else [1, chunk, vocab]; the cache holds T positions
        logits = out.logits[:, -1, :].float()
        self.prefix_cache.store(p.row.job.prompt_ids, [(la.keys, la.values) for la in p.cache.layers], logits)
        return self._prefilled(p, logits)

    def _prefilled(self, p: _Pending, logits: torch.Tensor) -> _Batch:
        import torch

        next_pos = torch.tensor([p.ids.shape[1]], device=p.ids.device)  # [1]
        return _Batch([p.row], p.cache, torch.ones_like(p.ids), next_pos, logits)

    def _new_cache(self) -> DynamicCache:
        from transformers.cache_utils import DynamicCache

        from serve.kv_cache import GrowingCache

        return GrowingCache() if self._growing else DynamicCache()

    def _merge(self, a: _Batch, b: _Batch, report: bool = True) -> _Batch:
        """One batch from two: left-pad the shorter KV cache and mask, then stack the rows.

        a: Ba rows of width Ta, b: Bb rows of width Tb → Ba + Bb rows of width max(Ta, Tb); `a.past` is
        reused for the result."""
        import torch
        import torch.nn.functional as F

        width = max(a.mask.shape[1], b.mask.shape[1])
        for x in (a, b):
            pad = width - x.mask.shape[1]
            if pad:
                x.mask = F.pad(x.mask, (pad, 0), value=0)  # [B, T] → [B, pad + T], zeros on the left
                for layer in x.past.layers:  # keys, values: [B, kv_heads, T, head_dim]; pad the T dim's left
                    layer.keys = F.pad(layer.keys, (0, 0, pad, 0))
                    layer.values = F.pad(layer.values, (0, 0, pad, 0))
        for la, lb in zip(a.past.layers, b.past.layers):  # stack on the batch dim: [Ba + Bb, kv_heads, T, hd]
            la.keys = torch.cat([la.keys, lb.keys], dim=0)
            la.values = torch.cat([la.values, lb.values], dim=0)
        merged = _Batch(
            a.rows + b.rows,
            a.past,
            torch.cat([a.mask, b.mask]),
            torch.cat([a.next_pos, b.next_pos]),
            torch.cat([a.logits, b.logits]),
        )
        if report and self.on_batch is not None:
            self.on_batch(len(merged.rows))
        return merged

    def _step(self, batch: _Batch) -> _Batch | None:
        """Sample one token per row, stream it, drop finished rows, run one decode step for the rest."""
        import torch

        toks = sample_next(batch.logits, batch.rows)  # [B] long, one token per row
        self.tokens_generated += len(batch.rows)
        for st, t in zip(batch.rows, toks.tolist()):
            st.push(t)
        keep = [r for r, st in enumerate(batch.rows) if not st.done]
        if not keep:
            return None
        if len(keep) < len(batch.rows):  # the B' unfinished rows, in every tensor's batch dim
            idx = torch.tensor(keep, device=batch.mask.device)  # [B']
            batch.past.batch_select_indices(idx)  # keys, values: [B', kv_heads, T, head_dim]
            batch.mask, batch.next_pos, toks = batch.mask[idx], batch.next_pos[idx], toks[idx]
            batch.rows = [batch.rows[r] for r in keep]
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(keep), 1))], dim=1)  # [B', T + 1]
        with self._model_lock, torch.inference_mode():
            out = self.model(
                input_ids=toks[:, None],  # [B', 1]: the new token
                attention_mask=batch.mask,
                position_ids=batch.next_pos[:, None],
                past_key_values=batch.past,
                use_cache=True,
            )
        batch.past, batch.logits, batch.next_pos = (
            out.past_key_values,  # now T + 1 positions
            out.logits[:, -1, :],  # [B', 1, vocab] → [B', vocab]
            batch.next_pos + 1,
        )
        return batch

    async def aclose(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._worker.join, 30)
            self._worker = None


@dataclass
class _Pending:
    """One admitted prompt being prefilled alone: tokens [0, done) of it are in `cache`."""

    row: RowState
    ids: torch.Tensor  # [1, T] long: the prompt
    cache: DynamicCache
    done: int = 0
    logits: torch.Tensor | None = None  # [1, vocab]: set when the prefix cache held the whole prompt


@dataclass
class _Batch:
    """A running batch of B rows, left-padded to a common width T (T grows by one per decode step).

    Row r of every tensor below is `rows[r]`; `_step` drops finished rows from all of them at once."""

    rows: list[RowState]  # B rows, in the order of the tensors' batch dimension
    past: DynamicCache  # the KV cache: per layer, `.keys` and `.values` of [B, kv_heads, T, head_dim]
    mask: torch.Tensor  # [B, T] long: 1 on a real token, 0 on left padding
    next_pos: torch.Tensor  # [B] long: the position id of each row's next token (padding not counted)
    logits: torch.Tensor  # [B, vocab]: the last position's logits, what the next `_step` samples from
