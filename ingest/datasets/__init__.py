"""Public datasets → ragtune documents + train/validation/test QA (`ragtune data import`).

    import_dataset("squad", "dev-v1.1.json", "out/")  # out/documents.jsonl, out/{train,validation,test}.jsonl

Questions are split by the source they were written from (SQuAD article, PubMedQA abstract; BEIR keeps
its own qrels splits), seeded and deterministic; see ingest/datasets/common.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingest.datasets.beir import read_beir
from ingest.datasets.common import (
    OUTPUT_FILES,
    SPLITS,
    Imported,
    assign_splits,
    check_ids,
    shared_test_docs,
    write_outputs,
)
from ingest.datasets.pubmedqa import read_pubmedqa
from ingest.datasets.squad import read_squad
from ragtune.errors import RagtuneError

FORMATS = ("squad", "beir", "pubmedqa")


@dataclass
class ImportReport:
    format: str
    source: str
    out_dir: str
    documents: int
    questions: dict[str, int]  # per split
    groups: dict[str, int]  # sources (articles, abstracts, queries) per split
    group_noun: str
    shared_test_docs: int  # test gold documents also gold for a train/validation question (kept)
    dropped_shared: int = 0  # train/validation questions dropped by `disjoint`
    notes: list[str] = field(default_factory=list)


def read_dataset(fmt: str, source: str | Path, test_ids: str | Path | None = None) -> Imported:
    src = Path(source)
    if not src.exists():
        raise RagtuneError(f"{src} does not exist; pass the dataset's file or folder")
    if fmt == "squad":
        return read_squad(src)
    if fmt == "beir":
        if not src.is_dir():
            raise RagtuneError(
                f"{src} is a file; pass the BEIR folder (with corpus.jsonl, queries.jsonl, qrels/)"
            )
        return read_beir(src)
    if fmt == "pubmedqa":
        return read_pubmedqa(src, Path(test_ids) if test_ids else None)
    raise RagtuneError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")


def import_dataset(
    fmt: str,
    source: str | Path,
    out_dir: str | Path,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.5,
    seed: int = 0,
    test_ids: str | Path | None = None,
    disjoint: bool = False,
) -> ImportReport:
    """Read `source` as `fmt`, split its questions by source, write OUTPUT_FILES into `out_dir` atomically.

    `disjoint` drops train/validation questions that share a gold document with a test question (only
    BEIR's own splits can share one)."""
    data = read_dataset(fmt, source, test_ids)
    check_ids(data.documents, data.questions, Path(source))
    splits = assign_splits(data.questions, validation_fraction, test_fraction, seed)
    shared = shared_test_docs(splits)
    dropped = 0
    if disjoint and shared:
        for s in ("train", "validation"):
            keep = [r for r in splits[s] if not shared.intersection(r["doc_ids"])]
            dropped += len(splits[s]) - len(keep)
            splits[s] = keep
    write_outputs(Path(out_dir), data.documents, splits)
    group_of = {q.row["id"]: q.group for q in data.questions}
    return ImportReport(
        format=fmt,
        source=str(source),
        out_dir=str(out_dir),
        documents=len(data.documents),
        questions={s: len(splits[s]) for s in SPLITS},
        groups={s: len({group_of[r["id"]] for r in splits[s]}) for s in SPLITS},
        group_noun=data.group_noun,
        shared_test_docs=len(shared),
        dropped_shared=dropped,
        notes=data.notes,
    )


__all__ = ["FORMATS", "OUTPUT_FILES", "SPLITS", "ImportReport", "import_dataset", "read_dataset"]
