"""ingest(): sources → plan → embed only what changed → publish a new index version."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest.chunking import Chunker, ChunkerConfig, embedding_text
from ingest.readers import Skipped, read_sources
from ingest.refresh import RefreshPlan, document_hash, make_plan
from ragtune.errors import RagtuneError
from ragtune.records import Chunk, Document

logger = logging.getLogger(__name__)

EMBED_BLOCK = 2048  # chunks per encode call: bounded memory, and sentence-transformers sorts each block by length


@dataclass
class IngestReport:
    index_dir: str
    version: str | None  # the version published by this run (or the current one when nothing changed)
    published: bool
    plan: RefreshPlan
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_removed: int = 0
    documents: int = 0  # in the index after this run
    chunks: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return self.plan.counts()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plan"] = {**self.plan.counts(), "full": self.plan.full}
        d["skipped"] = [asdict(s) for s in self.skipped]
        return d

    def summary(self, max_skipped: int = 20) -> str:
        lines = [self.plan.summary()]
        if self.dry_run:
            lines.append(f"dry run: nothing written to {self.index_dir}")
        elif self.published:
            lines.append(f"published version {self.version} of {self.index_dir}: {self.documents} documents, "
                         f"{self.chunks} chunks ({self.chunks_embedded} embedded, {self.chunks_removed} removed) "
                         f"in {self.seconds:.1f} s")
        else:
            lines.append(f"nothing changed; {self.index_dir} stays at version {self.version}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s) or line(s):")
            lines += [f"  {s.path}: {s.reason}" for s in self.skipped[:max_skipped]]
            if len(self.skipped) > max_skipped:
                lines.append(f"  ... and {len(self.skipped) - max_skipped} more (see --json)")
        return "\n".join(lines)


def ingest(sources: Sequence[str | Path], index_dir: str | Path, *, encoder: Any = None, full: bool = False,
           dry_run: bool = False, delete_missing: bool = True, include: Sequence[str] = (),
           exclude: Sequence[str] = (), chunk_size: int | None = None,
           overlap: int | None = None, title_in_embedding: bool | None = None, retriever: str | None = None,
           index_options: Any = None, show_progress: bool = True) -> IngestReport:
    """Bring the index at `index_dir` in line with `sources`, embedding only added and changed documents.

    `chunk_size`, `overlap`, `title_in_embedding`: None keeps the current version's (200, 40, True for a new index).
    `encoder`: a retriever.Encoder (default: built from `retriever`, else the embedded MiniLM).
    `index_options`: a retriever.IndexOptions (FAISS kind and parameters); default: the current version's,
    or IndexOptions() (flat below 200k chunks, else HNSW) for a new index.
    """
    from retriever import IndexCorrupt, IndexNotFound, IndexOptions, KnowledgeIndex, VersionWriter, index_lock

    t0 = time.perf_counter()
    if not sources:
        raise RagtuneError("no sources given; pass one or more files or folders to ingest")
    # validate what was asked before any work; None = as the current version (defaults for a new index)
    ChunkerConfig(chunk_size or ChunkerConfig.chunk_size, ChunkerConfig.overlap if overlap is None else overlap)
    index_dir = Path(index_dir)
    loaded = read_sources(sources, include, exclude)
    skipped = [s for part in loaded for s in part.skipped]
    origins = {part.origin for part in loaded}
    if encoder is None:
        from retriever import Encoder

        encoder = Encoder(retriever)
    current = [(d, part.origin, document_hash(d)) for part in loaded for d in part.documents]
    if not current and not any(part.is_folder for part in loaded):
        raise RagtuneError(f"no readable documents in {', '.join(map(str, sources))}; "
                           + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))

    _refuse_foreign_folder(index_dir)
    lock = _NoLock() if dry_run else index_lock(index_dir)
    with lock:
        parent = None
        try:
            parent = KnowledgeIndex.open(index_dir)
        except IndexNotFound:
            if (index_dir / "versions").is_dir() and not full:
                raise
        except IndexCorrupt:
            if not full:
                raise
            logger.warning("the current version of %s is unreadable; --full builds a new one", index_dir)
        try:
            old = parent.manifest.get("chunker", {}) if parent is not None else {}
            asked = dict(chunk_size=chunk_size, overlap=overlap, title_in_embedding=title_in_embedding)
            cfg = ChunkerConfig(**{k: v if v is not None else old.get(k, getattr(ChunkerConfig, k))
                                   for k, v in asked.items()})
            chunker = Chunker(encoder.tokenizer, encoder.max_seq_length, cfg)
            if parent is not None and not full:
                parent.check_encoder(encoder)
                old_cfg = parent.manifest.get("chunker")
                if old_cfg != chunker.config.to_dict():
                    logger.warning("chunker settings changed (%s → %s); re-embedding every document",
                                   old_cfg, chunker.config.to_dict())
                    full = True
            previous = parent.store.documents() if parent is not None else {}
            plan = make_plan(previous, current, origins, delete_missing, full)
            logger.info("%s", plan.summary())
            report = IngestReport(str(index_dir), parent.version if parent else None, False, plan, skipped,
                                  dry_run=dry_run)
            if parent is None and not current and not dry_run:
                raise RagtuneError(f"no readable documents in {', '.join(map(str, sources))}; nothing to index")
            if dry_run or (plan.is_noop and parent is not None):
                if parent is not None:
                    report.documents, report.chunks = len(previous), parent.ntotal
                report.seconds = time.perf_counter() - t0
                return report
            opts = index_options or (IndexOptions(**parent.manifest["index"]["options"]) if parent is not None
                                     else IndexOptions())
            writer = VersionWriter(index_dir, encoder.fingerprint, opts, parent=parent, full=full)
            try:
                _write(writer, plan, current, chunker, encoder, report, show_progress)
                srcs = origins | set(parent.manifest.get("sources", [])) if parent is not None and not full else origins
                report.version = writer.publish(
                    sources=sorted(srcs),
                    chunker=chunker.config.to_dict(),
                    counts={**plan.counts(), "embedded_chunks": report.chunks_embedded},
                )
            except BaseException:
                writer.abort()
                raise
        finally:
            if parent is not None:
                parent.close()
    report.published = True
    report.documents = len(writer.documents)
    report.chunks = writer.n_chunks
    report.seconds = time.perf_counter() - t0
    return report


def _write(writer: Any, plan: RefreshPlan, current: list[tuple[Document, str, str]], chunker: Chunker,
           encoder: Any, report: IngestReport, show_progress: bool) -> None:
    from tqdm.auto import tqdm

    by_id = {d.id: (d, origin, h) for d, origin, h in current}
    reused = writer.vectors_of([old for old, _ in plan.renamed])
    report.chunks_removed = writer.remove_documents(plan.changed + plan.removed + [o for o, _ in plan.renamed])
    todo = [by_id[i][0] for i in plan.added + plan.changed]
    rows = []
    # renamed documents: same content, so the same chunks; reuse the parent's vectors
    for old, new in plan.renamed:
        doc, origin, h = by_id[new]
        chunks = chunker.chunk([doc])[0]
        vecs = reused.get(old)
        if vecs is None or len(vecs) != len(chunks):  # cannot reuse (should not happen): embed again
            todo.append(doc)
            continue
        writer.add(chunks, vecs)
        rows.append((doc.id, h, origin, doc.source, doc.title, len(chunks), doc.metadata))
    chunks_of = chunker.chunk(todo) if todo else []
    flat: list[Chunk] = [c for cs in chunks_of for c in cs]
    for doc, cs in zip(todo, chunks_of):
        _, origin, h = by_id[doc.id]
        rows.append((doc.id, h, origin, doc.source, doc.title, len(cs), doc.metadata))
    title = chunker.config.title_in_embedding
    with tqdm(total=len(flat), desc="embedding", unit="chunk", disable=not show_progress or not flat) as bar:
        for i in range(0, len(flat), EMBED_BLOCK):
            block = flat[i:i + EMBED_BLOCK]
            writer.add(block, encoder.encode([embedding_text(c, title) for c in block]))
            bar.update(len(block))
    report.chunks_embedded = len(flat)
    writer.put_documents(rows)


def _refuse_foreign_folder(index_dir: Path) -> None:
    """Never write an index into a folder that holds something else."""
    if not index_dir.exists():
        return
    if not index_dir.is_dir():
        raise RagtuneError(f"--index {index_dir} is a file; pass a folder (new or an existing ragtune index)")
    ours = {"CURRENT", "versions", "tmp", "ingest.lock", "ingest.lock.owner"}
    foreign = sorted(p.name for p in index_dir.iterdir() if p.name not in ours)
    if foreign and not (index_dir / "versions").is_dir():
        raise RagtuneError(f"{index_dir} is not a ragtune index and not empty (it holds {', '.join(foreign[:3])}"
                           f"{', ...' if len(foreign) > 3 else ''}); pass a new or empty folder to --index")


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
