"""Per-request decoding state: stop sequences, EOS, max_tokens, streaming hold-back, sampling.

Used by the transformers backend's batch loop; one `RowState` per request in the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from serve.types import Delta, SamplingOptions

REPLACEMENT = "\ufffd"  # a byte-level BPE prefix can end inside a UTF-8 character


@dataclass
class Job:
    """One generation request queued for the batch loop; `sink` receives Deltas (from the loop's thread)."""

    prompt_ids: list[int]
    opts: SamplingOptions
    sink: Callable[[Delta], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    adapter: str | None = None  # the LoRA adapter the request named (backends that load several)


class RowState:
    """Tracks one row of a batch: generated ids, text emitted so far, why it finished."""

    def __init__(self, job: Job, tokenizer: Any, eos_ids: set[int], max_new: int):
        self.job = job
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.max_new = max(1, max_new)
        self.ids: list[int] = []
        self.sampled = 0
        self.emitted = 0  # characters of the decoded text already sent
        self.finish_reason: str | None = None
        self.holdback = max([len(s) - 1 for s in job.opts.stop if s] + [0])
        self.generator = None
        if job.opts.temperature > 0:
            import torch

            self.generator = torch.Generator().manual_seed((job.opts.seed or 0) % (2**63))

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def push(self, token: int) -> None:
        """Take one sampled token; emit what can be emitted; set finish_reason when the row is finished."""
        if self.job.cancelled.is_set():
            self.finish_reason = "cancelled"
            self.job.sink(Delta(completion_tokens=self.sampled, finish_reason="cancelled"))
            return
        self.sampled += 1
        if token in self.eos_ids:
            return self._finish("stop", self._text())
        self.ids.append(token)
        text = self._text()
        cut = _find_stop(text, self.job.opts.stop)
        if cut is not None:
            return self._finish("stop", text[:cut])
        if self.sampled >= self.max_new:
            return self._finish("length", text)
        safe = len(text) - self.holdback
        while safe > self.emitted and text[safe - 1] == REPLACEMENT:
            safe -= 1
        if safe > self.emitted:
            self.job.sink(Delta(text=text[self.emitted : safe], completion_tokens=self.sampled))
            self.emitted = safe

    def cancel_now(self) -> None:
        self.finish_reason = "cancelled"
        self.job.sink(Delta(completion_tokens=self.sampled, finish_reason="cancelled"))

    def fail(self, message: str) -> None:
        self.finish_reason = "error"
        self.job.sink(Delta(completion_tokens=self.sampled, finish_reason="error", error=message))

    def _text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)

    def _finish(self, reason: str, text: str) -> None:
        self.finish_reason = reason
        text = text.rstrip(REPLACEMENT) if reason == "length" and text.endswith(REPLACEMENT) else text
        self.job.sink(Delta(text=text[self.emitted :], completion_tokens=self.sampled, finish_reason=reason))
        self.emitted = len(text)


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


def sample_next(logits, rows: list[RowState]):
    """Next token per row: argmax for greedy rows, seeded temperature/top-p sampling for the others."""
    import torch

    out = logits.argmax(dim=-1)
    for r, st in enumerate(rows):
        if st.generator is None:
            continue
        opts = st.job.opts
        probs = torch.softmax(logits[r].float() / opts.temperature, dim=-1)
        if opts.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(0) - sorted_p < opts.top_p  # always keeps the most likely token
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        out[r] = torch.multinomial(probs, 1, generator=st.generator)[0]
    return out


def eos_ids(model, tokenizer) -> set[int]:
    """The ids that end a generation: the generation config's, the model config's and the tokenizer's."""
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), model.config):
        eos = getattr(src, "eos_token_id", None) if src is not None else None
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def folder_eos_ids(model_dir: Path, tokenizer: Any, config: Any = None) -> set[int]:
    """`eos_ids` for a model folder without loading its weights (its config and generation config)."""
    from transformers import AutoConfig, GenerationConfig

    if config is None:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    try:
        gen = GenerationConfig.from_pretrained(str(model_dir), local_files_only=True)
    except OSError:
        gen = None
    return eos_ids(SimpleNamespace(generation_config=gen, config=config), tokenizer)
