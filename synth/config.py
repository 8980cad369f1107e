"""SynthConfig: every setting of `ragtune synth`, with its help string and validation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ragtune.errors import RagtuneError


def _f(default: Any, help_: str) -> Any:
    return field(default=default, metadata={"help": help_})


@dataclass
class SynthConfig:
    index: str = _f(
        "", "Index folder whose chunks the questions are written from (`ragtune ingest ... --index`)."
    )
    out_dir: str = _f("", "Folder for train/validation/test.jsonl, synth_report.json and the progress file.")
    generator: str = _f(
        "default",
        "Who writes the pairs: `default` (the embedded SmolLM2-135M-Instruct), a local "
        "Hugging Face folder, or an OpenAI-compatible URL (http://host:8000/v1).",
    )
    api_key: str | None = _f(None, "Bearer key of the OpenAI-compatible URL (not stored in the report).")
    model: str | None = _f(None, "Model name at the URL (default: the first one its /v1/models lists).")
    writer: str = _f(
        "template",
        "Who writes the question for each answer span: `template` (a wh-question made from the span's "
        "sentence, no model), `generator` (the generator, asked for the question whose answer is the "
        "span), or `auto` (the generator's question, the template's when the generator's fails its "
        "checks). Default template: with the default 135M generator it kept 4x the pairs of `generator` "
        "and more than `auto` per chunk, in less time (docs/synth.md); try auto or generator with a "
        "larger --generator.",
    )
    questions_per_chunk: int = _f(
        2,
        "Answer spans asked about per chunk: the chunk's best-ranked spans (identifiers, numbers and "
        "dates, names, defined terms, noun phrases), from different sentences first.",
    )
    seed: int = _f(0, "Seed of the sentence order, the chunk sample and the split: same seed, same output.")
    max_tokens: int = _f(32, "Longest question the generator may write, in tokens.")
    batch_size: int = _f(8, "Prompts per generate call (local) or requests in flight (URL).")
    max_chunks: int | None = _f(None, "Use a seeded sample of this many chunks (default: every chunk).")
    min_chunk_words: int = _f(8, "Chunks with fewer words are skipped (counted), too short to ask about.")
    max_answer_words: int = _f(
        8, "Answers longer than this are dropped (counted): the answer must be a short span."
    )
    dedup_threshold: float = _f(
        0.7,
        "Drop a pair whose question+answer content words overlap a kept pair's by "
        "this Jaccard similarity or more (1.0: exact duplicates only).",
    )
    read_back: bool = _f(
        True,
        "Keep a pair only when the generator, asked its question with the chunk as the only passage "
        "(the RAG prompt), answers it with the pair's answer (token F1 >= 0.5 or containment).",
    )
    validation_fraction: float = _f(0.1, "Share of the source documents whose pairs go to validation.jsonl.")
    test_fraction: float = _f(0.2, "Share of the source documents whose pairs go to test.jsonl.")
    resume: bool = _f(True, "Reuse generations in the progress file made with the same settings.")

    def __post_init__(self) -> None:
        if not self.index:
            raise RagtuneError("`index` is required: pass --index DIR (an index built by `ragtune ingest`)")
        if not self.out_dir:
            raise RagtuneError("`out_dir` is required: pass --out DIR")
        for name in ("questions_per_chunk", "max_tokens", "batch_size", "max_answer_words"):
            if getattr(self, name) < 1:
                raise RagtuneError(
                    f"`{name}` should be a positive integer but the value passed is {getattr(self, name)}"
                )
        if self.writer not in ("auto", "generator", "template"):
            raise RagtuneError(
                f"`writer` should be auto, generator or template but the value passed is {self.writer!r}"
            )
        if self.max_chunks is not None and self.max_chunks < 1:
            raise RagtuneError(
                f"`max_chunks` should be a positive integer but the value passed is {self.max_chunks}"
            )
        if self.min_chunk_words < 0:
            raise RagtuneError(
                f"`min_chunk_words` should be >= 0 but the value passed is {self.min_chunk_words}"
            )
        if not 0 < self.dedup_threshold <= 1:
            raise RagtuneError(
                f"`dedup_threshold` should be in (0, 1] but the value passed is {self.dedup_threshold}"
            )
        v, t = self.validation_fraction, self.test_fraction
        if not 0 <= v < 1 or not 0 <= t < 1 or v + t >= 1:
            raise RagtuneError(
                f"`validation_fraction` {v} and `test_fraction` {t} must each be in [0, 1) and leave "
                "documents for training (sum below 1)"
            )

    @property
    def is_url(self) -> bool:
        return self.generator.startswith(("http://", "https://"))

    def public(self) -> dict[str, Any]:
        """The settings as written into synth_report.json (no key)."""
        d = asdict(self)
        d["api_key"] = "set" if self.api_key else None
        return d


def generation_key(generator_id: dict[str, Any], cfg: SynthConfig, prompt_version: str) -> str:
    """What a cached generation depends on: the generator, the prompt, the seed and max_tokens.

    The filters are not part of it, nor is the writer (auto and generator share the generator's
    questions): changing a threshold, `read_back` or `writer` re-checks cached generations without
    generating again."""
    parts = {
        "generator": generator_id,
        "prompt": prompt_version,
        "seed": cfg.seed,
        "max_tokens": cfg.max_tokens,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def config_help() -> dict[str, str]:
    return {f.name: f.metadata["help"] for f in fields(SynthConfig)}
