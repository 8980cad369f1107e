"""The CTranslate2 backend (CPU): the model converted once to CTranslate2 (int8 weights by default), greedy
requests batched, tokens streamed.

Why: on the default generator at batch 1 after ~760-token RAG prompts (bench/engines.py, 2 threads, a quiet
2-core AMD EPYC, ratios to transformers `generate` fp32 in one run): CTranslate2 int8 had 0.32x the time to
first token and 1.84x the decode tokens/s, but its greedy text follows fp32's for 22 of 48 tokens on average;
float32 had 0.57x / 1.55x with fp32's exact greedy tokens (`--ct2-compute-type float32`). Under 8 clients it
batches worse than the transformers backend (bench/serve.py: 24.4 against 48.0 output tokens/s; a request
waits for the running batch), so it is not the default. It is an optional extra (`pip install
'ragtune[ct2]'`), imported lazily, selected with `--backend ctranslate2`.

The conversion of a model folder (the default model or a merged folder from `ragtune export`) is cached under
$RAGTUNE_CACHE_DIR/ctranslate2/<weights hash>-<quantization>-<recipe>/ and published atomically. The prompt is
rendered and tokenized exactly as the transformers backend does (`render_prompt`), and the per-request
decoding state (stop sequences, EOS, max_tokens, streaming hold-back, cancellation) is the same `RowState`.

One worker thread runs one `generate_batch` at a time: requests that arrive together (within
`batch_window_ms`) share a batch; one that arrives while a batch runs waits for it (no continuous batching).
A row that finishes (EOS, stop sequence, max_tokens, client gone) leaves the batch at its next step (the
step callback returns True).

Seeds: CTranslate2's sampler keeps one random generator per worker thread, seeded once, so a per-request
seed cannot be honoured by it. Sampled requests (temperature > 0) therefore run on the transformers backend
over the same folder (loaded on the first such request): the same seed gives the same text as there.
Greedy requests (the RAG default) never touch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.prompt import control_token_strings
from serve.decoding import Job, RowState, folder_eos_ids
from serve.hf_backend import TransformersBackend
from serve.types import Completion, Delta, Prepared, SamplingOptions

logger = logging.getLogger(__name__)
RECIPE = "ct2-v1"
PREFILL_SLACK = 8  # prompts up to this many tokens longer than a batch's shortest join it
INSTALL_HINT = "the ctranslate2 backend needs CTranslate2: pip install 'ragtune[ct2]'"


def available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def best_compute_type(supported: set[str]) -> str:
    """int8 weights when the CPU has int8 kernels (measured fastest), else float32."""
    return "int8" if "int8" in supported else "float32"


def converted_dir(model_dir: str | Path, quantization: str) -> Path:
    """Convert `model_dir` (a Hugging Face folder) once; return the cached CTranslate2 folder."""
    from ragtune.derived_cache import entry, prune
    from ragtune.hashing import folder_hash
    from ragtune.settings import publishing

    model_dir = Path(model_dir)
    out = entry("ctranslate2", f"{folder_hash(model_dir)[:24]}-{quantization}-{RECIPE}")
    if (out / "model.bin").is_file():
        return out
    from ctranslate2.converters import TransformersConverter
    from transformers.utils import logging as hf_logging

    logger.info("converting %s to CTranslate2 %s (once)", model_dir, quantization)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with publishing(out) as tmp:
            TransformersConverter(str(model_dir), low_cpu_mem_usage=True).convert(
                str(tmp), quantization=quantization, force=True
            )
    except Exception as e:
        raise RagtuneError(f"CTranslate2 cannot convert {model_dir}: {type(e).__name__}: {e}") from e
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    prune(keep=out)
    return out


class CTranslate2Backend(TransformersBackend):
    """Shares the transformers backend's request queue, streaming, sync batch API and closing (the
    attributes those use are set here; no torch model is loaded); the batch loop is CTranslate2's."""

    kind = "ctranslate2"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        compute_type: str | None = None,
        threads: int | None = None,
        max_batch_size: int = 16,
        batch_window_ms: float = 10.0,
        model_id: str | None = None,
        on_batch: Callable[[int], None] | None = None,
    ):
        try:
            import ctranslate2
        except ImportError as e:
            raise RagtuneError(INSTALL_HINT) from e
        from transformers import AutoConfig, AutoTokenizer

        if max_batch_size < 1:
            raise ValueError(
                f"`max_batch_size` should be a positive integer but the value passed is {max_batch_size}"
            )
        self.model_dir = Path(model_dir)
        self.model_id = model_id or self.model_dir.name
        supported = set(ctranslate2.get_supported_compute_types("cpu"))
        self.compute_type = compute_type or best_compute_type(supported)
        if self.compute_type not in supported:
            raise RagtuneError(
                f"CTranslate2 compute type {self.compute_type!r} is not supported on this CPU "
                f"(supported: {', '.join(sorted(supported))})"
            )
        stored = "int8" if self.compute_type.startswith("int8") else self.compute_type
        self.ct2_dir = converted_dir(self.model_dir, stored)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._specials = control_token_strings(self.tokenizer)
        config = AutoConfig.from_pretrained(str(self.model_dir), local_files_only=True)
        self.eos_ids = folder_eos_ids(self.model_dir, self.tokenizer, config)
        self.max_context = int(getattr(config, "max_position_embeddings", 0) or 0) or None
        self.threads = threads or _torch_threads() or 0  # 0: CTranslate2's own default
        self.generator = ctranslate2.Generator(
            str(self.ct2_dir),
            device="cpu",
            compute_type=self.compute_type,
            intra_threads=self.threads,
            inter_threads=1,
        )
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window_ms / 1000.0
        self.on_batch = on_batch
        self.suppress_sequences: list[list[str]] | None = None  # token sequences never generated (none)
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._model_lock = threading.Lock()
        self._sampler: Any = None  # the transformers backend, for sampled requests (see the module doc)
        self._sampler_lock = threading.Lock()
        self.tokens_generated = 0
        self.batches_run = 0

    # --- requests: the transformers backend's queue, streaming and sync batch; sampled ones go to it -----
    async def stream(self, prepared: Prepared, opts: SamplingOptions) -> AsyncIterator[Delta]:
        """Queue one request and yield its Deltas; closing this generator early cancels the generation."""
        if opts.temperature > 0:
            source = (await asyncio.to_thread(self._get_sampler)).stream(prepared, opts)
        else:
            source = super().stream(prepared, opts)
        async with contextlib.aclosing(source):
            async for delta in source:
                yield delta

    def generate_prepared(self, prompts: Sequence[list[int]], opts: SamplingOptions) -> list[Completion]:
        if opts.temperature > 0:
            return self._get_sampler().generate_prepared(prompts, opts)
        return super().generate_prepared(prompts, opts)

    # --- the batch loop -----------------------------------------------------------------------------
    def _work(self) -> None:
        """One batch at a time: what the collection window gathered, run to its end."""
        closing = False
        while not closing:
            jobs, closing = self._collect(block=True, room=self.max_batch_size)
            if jobs:
                self.run_batch(jobs)

    def run_batch(self, jobs: list[Job]) -> None:
        """Generate greedily for `jobs`, streaming each row's text into its sink.

        CTranslate2 prefills a batch up to its shortest prompt at once and feeds the rest of the longer
        prompts one token per step, so rows run in groups of prompts within PREFILL_SLACK tokens of each
        other (one group after another)."""
        for group in _prefill_groups(self._admit(jobs), PREFILL_SLACK):
            self._run_group(group)

    def _run_group(self, rows: list[RowState]) -> None:
        self.batches_run += 1
        if self.on_batch is not None:
            self.on_batch(len(rows))

        def on_step(step) -> bool:  # called by CTranslate2's thread after each token of each row
            st = rows[step.batch_id]
            if st.done:
                return True
            self.tokens_generated += 1
            st.push(int(step.token_id))
            return st.done

        try:
            self.generator.generate_batch(
                [self.tokenizer.convert_ids_to_tokens(st.job.prompt_ids) for st in rows],
                max_length=max(st.max_new for st in rows),
                sampling_topk=1,
                beam_size=1,
                end_token=sorted(self.eos_ids),
                return_end_token=True,
                include_prompt_in_result=False,  # prefill the prompt at once
                suppress_sequences=self.suppress_sequences,
                callback=on_step,
            )
        except Exception as e:  # the worker must survive: fail this batch, keep serving the next
            logger.exception("generation batch failed")
            for st in rows:
                if not st.done:
                    st.fail(f"generation failed: {type(e).__name__}: {e}")
            return
        for st in rows:  # not expected: every row ends on its EOS, its max_tokens or its callback
            if not st.done:
                st.fail("generation ended without a last token")

    def _get_sampler(self):
        with self._sampler_lock:
            if self._sampler is None:
                logger.info("a sampled request: loading the transformers backend for seeded sampling")
                self._sampler = TransformersBackend(
                    self.model_dir,
                    device="cpu",
                    max_batch_size=self.max_batch_size,
                    batch_window_ms=self.batch_window * 1000,
                    model_id=self.model_id,
                    on_batch=self.on_batch,
                )
            return self._sampler

    async def aclose(self) -> None:
        await super().aclose()
        if self._sampler is not None:
            await self._sampler.aclose()


def _prefill_groups(rows: list[RowState], slack: int) -> list[list[RowState]]:
    """Rows by prompt length, in groups whose prompts are at most `slack` tokens longer than the shortest."""
    groups: list[list[RowState]] = []
    for st in sorted(rows, key=lambda st: len(st.job.prompt_ids)):
        if groups and len(st.job.prompt_ids) - len(groups[-1][0].job.prompt_ids) <= slack:
            groups[-1].append(st)
        else:
            groups.append([st])
    return groups


def _torch_threads() -> int | None:
    """torch's thread count when torch is loaded (`serve --torch-threads` sets it), so both engines agree."""
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None
