"""How passages are retrieved: dense (FAISS), bm25 (the lexical part) or hybrid (both, fused).

`RetrievalMode(kind=None)` is the default: DEFAULT_KIND where the index has a lexical part, and dense (with
a logged warning) on an index built before lexical parts existed. A kind asked for explicitly is never
replaced: bm25 or hybrid on such an index raises LexicalMissing, which says how to add the part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ragtune.errors import RagtuneError
from ragtune.retrieval import DEFAULT_KIND, FUSIONS, KINDS

logger = logging.getLogger(__name__)
_warned: set[str] = set()  # indexes already warned about (once per process)

FUSION_DEPTH = 100  # candidates taken from each retriever before fusing (at least k)


@dataclass(frozen=True)
class RetrievalMode:
    kind: str | None = None  # dense | bm25 | hybrid; None: DEFAULT_KIND, dense on an index without BM25
    fusion: str = "rrf"  # rrf | weighted (hybrid only)
    weight: float = 0.5  # the dense share of a weighted fusion, in [0, 1]

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise RagtuneError(f"retrieval mode must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.fusion not in FUSIONS:
            raise RagtuneError(f"fusion must be one of {', '.join(FUSIONS)}; got {self.fusion!r}")
        if not 0.0 <= self.weight <= 1.0:
            raise RagtuneError(f"the fusion weight must lie in [0, 1] (the dense share); got {self.weight}")

    @classmethod
    def of(cls, value: RetrievalMode | str | None) -> RetrievalMode:
        """A mode from a mode, a kind name (`hybrid`) or None (the default)."""
        return value if isinstance(value, RetrievalMode) else cls(kind=value or None)

    def with_kind(self, kind: str | None) -> RetrievalMode:
        return self if not kind else replace(self, kind=kind)

    def resolve(self, has_lexical: bool, where: str) -> str:
        """The kind to search with on an index that has (or lacks) a lexical part."""
        if has_lexical or self.kind == "dense":
            return self.kind or DEFAULT_KIND
        if self.kind is None:
            if where in _warned:
                return "dense"
            _warned.add(where)
            logger.warning(
                "%s has no lexical (BM25) part, so the default retrieval falls back to dense; add the part "
                "with `ragtune index add-lexical --index %s`",
                where,
                where,
            )
            return "dense"
        from retriever.errors import LexicalMissing

        raise LexicalMissing(
            f"{where} has no lexical (BM25) part, which --retrieval {self.kind} needs (the index was built "
            f"before ragtune kept one); add it with `ragtune index add-lexical --index {where}` (or rebuild "
            f"with `ragtune ingest SOURCES --index {where} --full`), or search with --retrieval dense"
        )

    @classmethod
    def from_options(
        cls, retrieval: str | None, fusion: str = "rrf", fusion_weight: float = 0.5
    ) -> RetrievalMode:
        """From the values of the shared CLI options (ragtune.retrieval.retrieval_options)."""
        return cls(kind=retrieval, fusion=fusion, weight=fusion_weight)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "fusion": self.fusion, "weight": self.weight}
