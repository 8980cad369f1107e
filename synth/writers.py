"""A question for each chosen span, by the writer the settings name; every refusal counted.

- "generator": the generator's answer-aware question (synth/prompt.py), refused when it fails its checks.
- "template": the wh-question of the span's sentence (synth/template.py); no model.
- "auto": the generator's question, or the template's when the generator's is refused (the refusal is
  counted in `report.replaced`).

Each written pair then passes the pair checks (synth/checks.py: the answer a short span of its chunk and
not in its question); read-back and near duplicates come later (synth/pipeline.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ragtune.records import Passage
from synth import checks
from synth.config import SynthConfig, generation_key
from synth.generation import run_jobs
from synth.progress import Progress, job_key
from synth.prompt import PROMPT_VERSION, STOP, build_prompt, parse_question, question_problem
from synth.spans import Span
from synth.template import TEMPLATE_VERSION, template_question

WRITERS = ("auto", "generator", "template")


@dataclass
class Asked:
    """One span of one chunk to write a question for; `key` identifies its generator prompt."""

    key: str
    chunk: Passage
    i: int
    span: Span


@dataclass
class Candidate:
    """A written pair that passed the per-pair checks (read-back and dedup still to come)."""

    key: str
    chunk: Passage
    i: int
    span: Span
    writer: str
    question: str
    answer: str  # the chunk's own spelling of the span
    reply: str | None = None  # the generator's raw reply, when it wrote the question
    read: str | None = None  # the read-back answer, when read-back is on


def span_id(span: Span) -> str:
    return f"{span.kind}\0{span.start}\0{span.text}\0{span.sentence}"


def asked(cfg: SynthConfig, spans: dict[str, list[Span]], chunks: list[Passage], gen_id: dict) -> list[Asked]:
    settings = generation_key(gen_id, cfg, PROMPT_VERSION)
    return [
        Asked(job_key(settings, c.chunk_id, c.text, span_id(sp)), c, i, sp)
        for c in chunks
        for i, sp in enumerate(spans[c.chunk_id])
    ]


def generate(
    cfg: SynthConfig, jobs: list[Asked], get_generator: Any, report: Any, show_progress: bool
) -> dict[str, str | None]:
    """The generator's reply to every job by its key (none for the template writer); new replies
    generated in batches and saved to the progress file as made."""
    if cfg.writer == "template":
        return {}
    store = Progress(cfg.out_dir, resume=cfg.resume)
    todo = [(j.key, j.chunk.chunk_id, j.i, build_prompt(j.span)) for j in jobs if j.key not in store.done]
    report.new = len(todo)
    options = {"max_tokens": cfg.max_tokens, "stop": list(STOP), "seed": cfg.seed, "temperature": 0.0}
    report.generation_s = run_jobs(
        todo,
        store,
        get_generator,
        options,
        cfg.batch_size,
        len(jobs),
        "questions",
        report.notes,
        show_progress,
    )
    return {j.key: store.done[j.key] for j in jobs}


def write_questions(
    cfg: SynthConfig, jobs: list[Asked], replies: dict[str, str | None], report: Any, dropped: Counter
) -> list[Candidate]:
    """The pairs that pass the per-pair checks, in chunk order; `dropped` counts (writer, reason)."""
    out = []
    replaced: Counter[str] = Counter()
    for j in jobs:
        report.generated += 1
        cand, why = (None, None) if cfg.writer == "template" else _by_generator(cfg, j, replies[j.key])
        if cand is None and cfg.writer != "generator":
            if why is not None:
                replaced[why] += 1
            cand, why = _by_template(cfg, j)
        if cand is None:
            dropped["template" if cfg.writer == "auto" else cfg.writer, why] += 1
            continue
        out.append(cand)
    if cfg.writer == "auto":
        report.replaced = {r: replaced[r] for r in checks.DROP_REASONS if r in checks.PER_PAIR}
    return out


def _by_generator(cfg: SynthConfig, j: Asked, reply: str | None) -> tuple[Candidate | None, str | None]:
    if reply is None:
        return None, checks.GENERATION_FAILED
    question = parse_question(reply)
    problem = question_problem(question, j.span)
    if problem is not None:
        return None, problem
    return _checked(cfg, j, "generator", j.key, question, reply)


def _by_template(cfg: SynthConfig, j: Asked) -> tuple[Candidate | None, str | None]:
    question = template_question(j.span)
    if question is None:
        return None, checks.NO_TEMPLATE
    key = job_key(TEMPLATE_VERSION, j.chunk.chunk_id, j.chunk.text, span_id(j.span))
    return _checked(cfg, j, "template", key, question, None)


def _checked(
    cfg: SynthConfig, j: Asked, writer: str, key: str, question: str, reply: str | None
) -> tuple[Candidate | None, str | None]:
    reason, answer = checks.check_pair(question, j.span.text, j.chunk.text, cfg.max_answer_words)
    if reason is not None:
        return None, reason
    return Candidate(key, j.chunk, j.i, j.span, writer, question, answer, reply), None
