"""`synthesize`: chunks of an index -> answer spans -> a question per span -> checked, deduplicated
pairs -> QA splits by document.

    report = synthesize(SynthConfig(index="idx", out_dir="qa"))   # qa/{train,validation,test}.jsonl

Answer first: each chunk's best `questions_per_chunk` spans (synth/spans.py), then a question for each
by the writer `cfg.writer` names (synth/writers.py). Generation and read-back are resumable
(synth/progress.py); checking, deduplication and the split run over all pairs in the index's chunk
order, so a resumed or re-batched run writes the same files. The output files are written to temporary
names and renamed into place; nothing is written when no pair survives the checks.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import Passage, write_jsonl
from synth import checks
from synth.config import SynthConfig
from synth.generation import prepare_generator, run_jobs
from synth.progress import PROGRESS_FILE, READ_BACK_FILE, Progress
from synth.readback import READ_BACK_MAX_TOKENS, agrees, read_back_key, read_back_prompt
from synth.report import SynthReport
from synth.spans import pick_spans
from synth.writers import WRITERS, Candidate, asked, generate, write_questions

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
OUTPUT_FILES = tuple(f"{s}.jsonl" for s in SPLITS)
REPORT_FILE = "synth_report.json"


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

    dropped: Counter[tuple[str, str]] = Counter()  # (writer, reason) -> pairs
    jobs = asked(cfg, _spans(cfg, chunks, report), chunks, report.generator)
    try:
        replies = generate(cfg, jobs, get, report, progress)
        cands = write_questions(cfg, jobs, replies, report, dropped)
        if cfg.read_back:
            cands = _read_back(cfg, cands, get, report, progress, dropped)
    finally:
        if opened and generator is None:
            opened[0].close()
    rows = _keep(cfg, cands, report, dropped)
    report.wall_s = time.perf_counter() - t0
    if not rows:
        raise RagtuneError(_nothing_kept(cfg, report, len(chunks)))
    _write(cfg, rows, report)
    return report


def _spans(cfg: SynthConfig, chunks: list[Passage], report: SynthReport) -> dict[str, list]:
    """Each chunk's spans to ask about; chunks with none are counted as skipped."""
    spans = {c.chunk_id: pick_spans(c.text, c.title, cfg.questions_per_chunk) for c in chunks}
    report.chunks_skipped["no_span"] = sum(not s for s in spans.values())
    return spans


def _nothing_kept(cfg: SynthConfig, report: SynthReport, n_chunks: int) -> str:
    drops = ", ".join(f"{k} {v}" for k, v in report.dropped.items() if v) or "none"
    msg = (
        f"no pair passed the checks ({report.generated} written from {n_chunks} chunks; dropped: {drops}); "
        "nothing was written."
    )
    if not report.generated:
        return msg + " No chunk holds a prose sentence with an answer span: ingest documents with prose"
    if cfg.writer == "generator":
        msg += (
            f" The generator's replies are kept in {Path(cfg.out_dir) / PROGRESS_FILE}; --writer auto "
            "falls back to template questions"
        )
    else:
        msg += " A larger model (--generator FOLDER or URL) reads back and writes questions better"
    if report.dropped.get(checks.READER_DISAGREES):
        msg += "; --no-read-back keeps the pairs its read-back disagreed with"
    return msg


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
            dropped[c.writer, checks.GENERATION_FAILED if read is None else checks.READER_DISAGREES] += 1
            continue
        kept.append(c)
    return kept


def _keep(cfg: SynthConfig, cands: list[Candidate], report: SynthReport, dropped: Counter) -> list[dict]:
    """The kept QA rows, near duplicates of an earlier kept pair dropped; the drop counts into `report`."""
    dedup = checks.NearDuplicates(cfg.dedup_threshold)
    rows = []
    kept: Counter[str] = Counter()
    for c in cands:
        if dedup.is_duplicate(c.question, c.answer):
            dropped[c.writer, checks.NEAR_DUPLICATE] += 1
            continue
        dedup.add(c.question, c.answer)
        kept[c.writer] += 1
        rows.append(_row(c))
    report.dropped = {r: sum(n for (_, why), n in dropped.items() if why == r) for r in checks.DROP_REASONS}
    report.writers = {
        w: {"kept": kept[w], "dropped": {r: dropped[w, r] for r in checks.DROP_REASONS}}
        for w in WRITERS[1:]
        if cfg.writer in ("auto", w)
    }
    report.kept = len(rows)
    return rows


def _row(c: Candidate) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "chunk_id": c.chunk.chunk_id,
        "pair": c.i,
        "writer": c.writer,
        "span_type": c.span.kind,
        "sentence": c.span.sentence,
    }
    if c.reply is not None:
        meta["generated"] = c.reply.strip()
    if c.read is not None:
        meta["read_back"] = c.read
    return {
        "id": f"synth-{c.key[:12]}",
        "question": c.question,
        "answer": c.answer,
        "doc_ids": [c.chunk.doc_id],
        "context": c.chunk.text,
        "metadata": meta,
    }


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
