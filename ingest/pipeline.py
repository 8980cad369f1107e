"""ingest(): sources → plan → embed only what changed → publish a new index version."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ingest.chunking import Chunker, ChunkerConfig, embedding_text
from ingest.readers import Skipped, read_sources
from ingest.refresh import RefreshPlan, document_hash, make_plan
from ragtune.errors import RagtuneError
from ragtune.records import Chunk, Document

logger = logging.getLogger(__name__)

EMBED_BLOCK = (
    2048  # chunks per encode call: bounded memory, and sentence-transformers sorts each block by length
)


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
            lines.append(
                f"published version {self.version} of {self.index_dir}: {self.documents} documents, "
                f"{self.chunks} chunks ({self.chunks_embedded} embedded, {self.chunks_removed} removed) "
                f"in {self.seconds:.1f} s"
            )
        else:
            lines.append(f"nothing changed; {self.index_dir} stays at version {self.version}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s) or line(s):")
            lines += [f"  {s.path}: {s.reason}" for s in self.skipped[:max_skipped]]
            if len(self.skipped) > max_skipped:
                lines.append(f"  ... and {len(self.skipped) - max_skipped} more (see --json)")
        return "\n".join(lines)


@dataclass(frozen=True)
class IngestOptions:
    """How one ingest treats the sources and the index (also accepted as keyword arguments of `ingest`)."""

    full: bool = False  # re-embed every document into a version of its own (no parent)
    dry_run: bool = False  # plan and report; write nothing
    delete_missing: bool = True  # documents no longer in the sources leave the index
    include: Sequence[str] = ()  # glob patterns of the files to read in folders
    exclude: Sequence[str] = ()
    # None keeps the current version's (200, 40, True for a new index)
    chunk_size: int | None = None
    overlap: int | None = None
    title_in_embedding: bool | None = None
    # a retriever.IndexOptions (FAISS kind and parameters); None: the current version's, or IndexOptions()
    # (flat below 200k chunks, else HNSW) for a new index
    index_options: Any = None


def ingest(
    sources: Sequence[str | Path],
    index_dir: str | Path,
    options: IngestOptions | None = None,
    *,
    encoder: Any = None,
    retriever: str | None = None,
    show_progress: bool = True,
    **option_fields: Any,
) -> IngestReport:
    """Bring the index at `index_dir` in line with `sources`, embedding only added and changed documents.

    `options`: an IngestOptions, or its fields as keyword arguments (`full=True`, `chunk_size=300`, ...).
    `encoder`: a retriever.Encoder (default: built from `retriever`, else the embedded MiniLM).
    """
    t0 = time.perf_counter()
    opts = replace(options or IngestOptions(), **option_fields)
    run = _Ingest(Path(index_dir), opts, show_progress)
    run.read(sources, encoder, retriever)
    report = run.update()
    report.seconds = time.perf_counter() - t0
    return report


class _Ingest:
    """One ingest, in phases: read the sources → (under the index lock) open the current version, plan the
    refresh → write and publish the new version."""

    def __init__(self, index_dir: Path, opts: IngestOptions, show_progress: bool):
        self.index_dir, self.opts, self.show_progress = index_dir, opts, show_progress
        self.full = opts.full

    def read(self, sources: Sequence[str | Path], encoder: Any, retriever: str | None) -> None:
        """Validate what was asked and read every source, before any lock is taken or anything written."""
        if not sources:
            raise RagtuneError("no sources given; pass one or more files or folders to ingest")
        # None = as the current version (defaults for a new index)
        o = self.opts
        ChunkerConfig(
            o.chunk_size or ChunkerConfig.chunk_size,
            ChunkerConfig.overlap if o.overlap is None else o.overlap,
        )
        loaded = read_sources(sources, o.include, o.exclude)
        self.skipped = [s for part in loaded for s in part.skipped]
        self.origins = {part.origin for part in loaded}
        if encoder is None:
            from retriever import Encoder

            encoder = Encoder(retriever)
        self.encoder = encoder
        self.current = [(d, part.origin, document_hash(d)) for part in loaded for d in part.documents]
        self.source_names = ", ".join(map(str, sources))
        if not self.current and not any(part.is_folder for part in loaded):
            raise RagtuneError(
                f"no readable documents in {self.source_names}; "
                + "; ".join(f"{s.path}: {s.reason}" for s in self.skipped[:5])
            )

    def update(self) -> IngestReport:
        from retriever import index_lock

        _refuse_foreign_folder(self.index_dir)
        with _NoLock() if self.opts.dry_run else index_lock(self.index_dir):
            parent = self._open_parent()
            try:
                report = self._plan(parent)
                if not (self.opts.dry_run or (report.plan.is_noop and parent is not None)):
                    self._publish(parent, report)
                elif parent is not None:
                    report.documents, report.chunks = len(self.previous), parent.ntotal
            finally:
                if parent is not None:
                    parent.close()
        return report

    def _open_parent(self) -> Any:
        """The current version (None for a new index, or an unreadable one that --full replaces)."""
        from retriever import IndexCorrupt, IndexNotFound, KnowledgeIndex

        try:
            return KnowledgeIndex.open(self.index_dir)
        except IndexNotFound:
            if (self.index_dir / "versions").is_dir() and not self.full:
                raise
        except IndexCorrupt:
            if not self.full:
                raise
            logger.warning("the current version of %s is unreadable; --full builds a new one", self.index_dir)
        return None

    def _plan(self, parent: Any) -> IngestReport:
        o = self.opts
        old = parent.manifest.get("chunker", {}) if parent is not None else {}
        asked = {"chunk_size": o.chunk_size, "overlap": o.overlap, "title_in_embedding": o.title_in_embedding}
        cfg = ChunkerConfig(
            **{k: v if v is not None else old.get(k, getattr(ChunkerConfig, k)) for k, v in asked.items()}
        )
        self.chunker = Chunker(self.encoder.tokenizer, self.encoder.max_seq_length, cfg)
        if parent is not None and not self.full:
            parent.check_encoder(self.encoder)
            old_cfg = parent.manifest.get("chunker")
            if old_cfg != self.chunker.config.to_dict():
                logger.warning(
                    "chunker settings changed (%s → %s); re-embedding every document",
                    old_cfg,
                    self.chunker.config.to_dict(),
                )
                self.full = True
        self.previous = parent.store.documents() if parent is not None else {}
        plan = make_plan(self.previous, self.current, self.origins, o.delete_missing, self.full)
        logger.info("%s", plan.summary())
        report = IngestReport(
            str(self.index_dir),
            parent.version if parent else None,
            False,
            plan,
            self.skipped,
            dry_run=o.dry_run,
        )
        if parent is None and not self.current and not o.dry_run:
            raise RagtuneError(f"no readable documents in {self.source_names}; nothing to index")
        return report

    def _publish(self, parent: Any, report: IngestReport) -> None:
        from retriever import IndexOptions, VersionWriter

        opts = self.opts.index_options or (
            IndexOptions(**parent.manifest["index"]["options"]) if parent is not None else IndexOptions()
        )
        writer = VersionWriter(self.index_dir, self.encoder.fingerprint, opts, parent=parent, full=self.full)
        try:
            _write(writer, report.plan, self.current, self.chunker, self.encoder, report, self.show_progress)
            srcs = self.origins
            if parent is not None and not self.full:
                srcs = srcs | set(parent.manifest.get("sources", []))
            report.version = writer.publish(
                sources=sorted(srcs),
                chunker=self.chunker.config.to_dict(),
                counts={**report.plan.counts(), "embedded_chunks": report.chunks_embedded},
            )
        except BaseException:
            writer.abort()
            raise
        report.published = True
        report.documents = len(writer.documents)
        report.chunks = writer.n_chunks


def _write(
    writer: Any,
    plan: RefreshPlan,
    current: list[tuple[Document, str, str]],
    chunker: Chunker,
    encoder: Any,
    report: IngestReport,
    show_progress: bool,
) -> None:
    from tqdm.auto import tqdm

    by_id = {d.id: (d, origin, h) for d, origin, h in current}
    reused = writer.vectors_of([old for old, _ in plan.renamed])
    report.chunks_removed = writer.remove_documents(
        plan.changed + plan.removed + [o for o, _ in plan.renamed]
    )
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
            block = flat[i : i + EMBED_BLOCK]
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
        raise RagtuneError(
            f"{index_dir} is not a ragtune index and not empty (it holds {', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); pass a new or empty folder to --index"
        )


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
