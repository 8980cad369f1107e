"""`synthesize`: chunks of an index -> generated pairs -> checked, deduplicated pairs -> QA splits by document.

    report = synthesize(SynthConfig(index="idx", out_dir="qa"))   # qa/{train,validation,test}.jsonl

Generation is resumable (synth/progress.py); checking, deduplication and the split run over all
generations in the index's chunk order, so a resumed or re-batched run writes the same files. The
output files are written to temporary names and renamed into place; nothing is written when no pair
survives the checks.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import Passage, write_jsonl
from synth import checks
from synth.config import SynthConfig, generation_key
from synth.generation import prepare_generator, run_jobs
from synth.progress import READ_BACK_FILE, Progress, job_key
from synth.prompt import PROMPT_VERSION, STOP, build_prompt, focus_sentence, parse_pair
from synth.readback import READ_BACK_MAX_TOKENS, agrees, read_back_key, read_back_prompt

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
OUTPUT_FILES = tuple(f"{s}.jsonl" for s in SPLITS)
REPORT_FILE = "synth_report.json"


@dataclass
class SynthReport:
    out_dir: str
    chunks: int = 0  # chunks asked about
    chunks_skipped: dict[str, int] = field(default_factory=dict)
    generated: int = 0  # generations checked (new + reused from the progress file)
    new: int = 0  # generated in this run
    generation_s: float = 0.0  # wall time of this run's generation
    read_backs: int = 0  # pairs read back (new + reused from the read-back file)
    read_backs_new: int = 0  # read back in this run
    read_back_s: float = 0.0  # wall time of this run's read-back
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> {"pairs", "documents"}
    wall_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def generated_per_min(self) -> float | None:
        return 60 * self.new / self.generation_s if self.new and self.generation_s > 0 else None

    @property
    def kept_per_min(self) -> float | None:
        """Kept pairs per minute of this run's generation and read-back: the pairs generated per minute of
        both times the share kept (exact for a run that generated and read back everything itself)."""
        seconds = self.generation_s + self.read_back_s
        if not self.new or seconds <= 0 or not self.generated:
            return None
        return 60 * self.new / seconds * self.kept / self.generated

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["generated_per_min"], d["kept_per_min"] = self.generated_per_min, self.kept_per_min
        return d

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in self.chunks_skipped.items() if v)
        head = (
            f"synth -> {self.out_dir}: {self.chunks} chunks{f' ({skipped} skipped)' if skipped else ''}, "
            f"{self.generated} pairs generated ({self.new} new, {self.generated - self.new} from the progress "
            f"file), {self.kept} kept"
        )
        lines = [head]
        dropped = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v)
        lines.append(f"  dropped: {dropped or 'none'}")
        if self.generated_per_min is not None:
            lines.append(
                f"  rate: {self.generated_per_min:.1f} generated/min, {self.kept_per_min:.1f} kept/min "
                f"({self.new} generations in {self.generation_s:.0f} s, {self.read_backs_new} read-backs in "
                f"{self.read_back_s:.0f} s)"
            )
        for s, c in self.splits.items():
            lines.append(f"  {s + '.jsonl':<17} {c['pairs']} pairs from {c['documents']} documents")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def synthesize(
    cfg: SynthConfig,
    *,
    generator: Any = None,
    generator_id: dict[str, Any] | None = None,
    progress: bool = True,
) -> SynthReport:
    """Generate, check and split pairs for `cfg.index` into `cfg.out_dir`.

    `generator` (an object with serve's `Generator.generate` signature) replaces the one `cfg.generator`
    names; `generator_id` then identifies it in the progress file's key."""
    t0 = time.perf_counter()
    report = SynthReport(out_dir=cfg.out_dir, settings=cfg.public())
    chunks = _read_chunks(cfg, report)
    load, opened = (lambda: generator), []
    if generator is None:
        load, generator_id = prepare_generator(cfg.generator, cfg.api_key, cfg.model, cfg.batch_size)
    report.generator = generator_id or {"model": type(generator).__name__}

    def get() -> Any:  # the model loads on first use: a finished run resumed loads nothing
        if not opened:
            opened.append(load())
        return opened[0]

    dropped: Counter[str] = Counter()
    try:
        texts = _generate(cfg, chunks, get, report, progress)
        cands = _candidates(cfg, chunks, texts, report, dropped)
        if cfg.read_back:
            cands = _read_back(cfg, cands, get, report, progress, dropped)
    finally:
        if opened and generator is None:
            opened[0].close()
    rows = _keep(cfg, cands, report, dropped)
    report.wall_s = time.perf_counter() - t0
    if not rows:
        raise RagtuneError(
            f"no generated pair passed the checks ({report.generated} generated from {len(chunks)} chunks; dropped: "
            f"{', '.join(f'{k} {v}' for k, v in report.dropped.items() if v)}); nothing was written. The "
            f"generator's replies are kept in {Path(cfg.out_dir) / 'synth-progress.jsonl'}: a larger model "
            "(--generator FOLDER or URL) writes usable pairs more often"
            + (
                "; --no-read-back keeps the pairs its read-back disagreed with"
                if report.dropped.get(checks.READER_DISAGREES)
                else ""
            )
        )
    _write(cfg, rows, report)
    return report


def _read_chunks(cfg: SynthConfig, report: SynthReport) -> list[Passage]:
    from retriever import KnowledgeIndex

    if not Path(cfg.index).is_dir():
        raise RagtuneError(
            f"index {cfg.index} does not exist; build it with `ragtune ingest SOURCES --index {cfg.index}`"
        )
    with KnowledgeIndex.open(cfg.index) as index:
        chunks = list(index.iter_passages())
    if not chunks:
        raise RagtuneError(
            f"index {cfg.index} holds no chunks; ingest documents first (`ragtune ingest SOURCES "
            f"--index {cfg.index}`)"
        )
    usable = [c for c in chunks if len(checks.words(c.text)) >= cfg.min_chunk_words]
    report.chunks_skipped["too_short"] = len(chunks) - len(usable)
    if not usable:
        raise RagtuneError(
            f"every chunk of index {cfg.index} has fewer than {cfg.min_chunk_words} words; lower "
            "--min-chunk-words or ingest longer documents"
        )
    if cfg.max_chunks is not None and cfg.max_chunks < len(usable):
        picked = set(random.Random(cfg.seed).sample(range(len(usable)), cfg.max_chunks))
        usable = [c for i, c in enumerate(usable) if i in picked]  # index order, whatever the sample
    report.chunks = len(usable)
    return usable


def _generate(
    cfg: SynthConfig, chunks: list[Passage], get_generator: Any, report: SynthReport, show_progress: bool
) -> dict[str, str | None]:
    """Every (chunk, i) generation by its progress key; new ones generated in batches and saved as made."""
    settings = generation_key(report.generator, cfg, PROMPT_VERSION)
    store = Progress(cfg.out_dir, resume=cfg.resume)
    jobs = [
        (job_key(settings, c.chunk_id, c.text, i), c, i)
        for i in range(cfg.questions_per_chunk)
        for c in chunks
    ]
    todo = [
        (key, c.chunk_id, i, build_prompt(c.text, c.title, focus_sentence(c.text, c.chunk_id, i, cfg.seed)))
        for key, c, i in jobs
        if key not in store.done
    ]
    report.new = len(todo)
    options = {"max_tokens": cfg.max_tokens, "stop": list(STOP), "seed": cfg.seed, "temperature": 0.0}
    report.generation_s = run_jobs(
        todo,
        store,
        get_generator,
        options,
        cfg.batch_size,
        len(jobs),
        "generations",
        report.notes,
        show_progress,
    )
    return {key: store.done[key] for key, _, _ in jobs}


@dataclass
class Candidate:
    """A generated pair that passed the per-pair checks (dedup and read-back still to come)."""

    key: str
    chunk: Passage
    i: int
    question: str
    answer: str  # the chunk's own spelling of the span
    reply: str
    read: str | None = None  # the read-back answer, when read-back is on


def _candidates(
    cfg: SynthConfig,
    chunks: list[Passage],
    texts: dict[str, str | None],
    report: SynthReport,
    dropped: Counter,
) -> list[Candidate]:
    """The pairs that parse and pass the per-pair checks, in chunk order; every drop counted."""
    settings = generation_key(report.generator, cfg, PROMPT_VERSION)
    out = []
    for c in chunks:
        for i in range(cfg.questions_per_chunk):
            key = job_key(settings, c.chunk_id, c.text, i)
            reply = texts[key]
            report.generated += 1
            pair = None if reply is None else parse_pair(reply)
            if pair is None:
                dropped[checks.GENERATION_FAILED if reply is None else checks.UNPARSABLE] += 1
                continue
            reason, span = checks.check_pair(*pair, c.text, cfg.max_answer_words)
            if reason is not None:
                dropped[reason] += 1
                continue
            out.append(Candidate(key, c, i, pair[0], span, reply))
    return out


def _read_back(
    cfg: SynthConfig,
    cands: list[Candidate],
    get_generator: Any,
    report: SynthReport,
    show_progress: bool,
    dropped: Counter,
) -> list[Candidate]:
    """The candidates whose question, answered by the generator from the chunk alone, gives their answer."""
    store = Progress(cfg.out_dir, resume=cfg.resume, name=READ_BACK_FILE)
    keys = [read_back_key(c.key, c.question) for c in cands]
    todo = [
        (k, c.chunk.chunk_id, c.i, read_back_prompt(c.question, c.chunk))
        for k, c in zip(keys, cands)
        if k not in store.done
    ]
    report.read_backs, report.read_backs_new = len(cands), len(todo)
    options = {"max_tokens": READ_BACK_MAX_TOKENS, "stop": None, "seed": cfg.seed, "temperature": 0.0}
    report.read_back_s = run_jobs(
        todo,
        store,
        get_generator,
        options,
        cfg.batch_size,
        len(cands),
        "read-backs",
        report.notes,
        show_progress,
    )
    kept = []
    for k, c in zip(keys, cands):
        read = store.done[k]
        c.read = None if read is None else read.strip()
        if read is None or not agrees(c.read, c.answer):
            dropped[checks.GENERATION_FAILED if read is None else checks.READER_DISAGREES] += 1
            continue
        kept.append(c)
    return kept


def _keep(cfg: SynthConfig, cands: list[Candidate], report: SynthReport, dropped: Counter) -> list[dict]:
    """The kept QA rows, near duplicates of an earlier kept pair dropped; the drop counts into `report`."""
    dedup = checks.NearDuplicates(cfg.dedup_threshold)
    rows = []
    for c in cands:
        if dedup.is_duplicate(c.question, c.answer):
            dropped[checks.NEAR_DUPLICATE] += 1
            continue
        dedup.add(c.question, c.answer)
        meta: dict[str, Any] = {"chunk_id": c.chunk.chunk_id, "pair": c.i, "generated": c.reply.strip()}
        if c.read is not None:
            meta["read_back"] = c.read
        rows.append(
            {
                "id": f"synth-{c.key[:12]}",
                "question": c.question,
                "answer": c.answer,
                "doc_ids": [c.chunk.doc_id],
                "context": c.chunk.text,
                "metadata": meta,
            }
        )
    report.dropped = {r: dropped[r] for r in checks.DROP_REASONS}
    report.kept = len(rows)
    return rows


def _write(cfg: SynthConfig, rows: list[dict[str, Any]], report: SynthReport) -> None:
    where = checks.split_documents(
        [r["doc_ids"][0] for r in rows], cfg.validation_fraction, cfg.test_fraction, cfg.seed
    )
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for r in rows:
        splits[where[r["doc_ids"][0]]].append(r)
    report.splits = {
        s: {"pairs": len(splits[s]), "documents": len({r["doc_ids"][0] for r in splits[s]})} for s in SPLITS
    }
    empty = [s for s in SPLITS if not splits[s] and (s == "train" or getattr(cfg, f"{s}_fraction") > 0)]
    if empty:
        report.notes.append(
            f"{', '.join(empty)} got no pairs: the kept pairs come from only {len(set(where))} "
            "documents; use more chunks or documents"
        )
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contents: dict[str, Any] = {f"{s}.jsonl": splits[s] for s in SPLITS}
    temps = {name: out / f".{name}.tmp-{os.getpid()}" for name in (*contents, REPORT_FILE)}
    try:
        for name, part in contents.items():
            write_jsonl(temps[name], part)
        temps[REPORT_FILE].write_text(
            json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8"
        )
        for name, tmp in temps.items():
            os.replace(tmp, out / name)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
