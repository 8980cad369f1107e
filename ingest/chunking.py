"""Token-based chunking with the embedder's own tokenizer.

Chunks hold at most `chunk_size` tokens, overlap by about `overlap` tokens, and end (and start) at a
paragraph break when one lies in the second half of the window, else at a sentence end, else between
words. Every chunk is an exact slice `doc.text[start:end]`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import Chunk, Document

logger = logging.getLogger(__name__)

PARAGRAPH, LINE, SENTENCE, WORD, NONE = 4, 3, 2, 1, 0
_SENTENCE_END = ".!?。！？"
_CLOSERS = "\"')]}»”’"


@dataclass(frozen=True)
class ChunkerConfig:
    chunk_size: int = 200  # tokens of the embedder's tokenizer per chunk (clamped to its max sequence length)
    overlap: int = 40  # tokens shared by neighbouring chunks
    title_in_embedding: bool = (
        True  # embed "title text" (as MTEB does); the title's tokens count toward the max
    )

    def __post_init__(self):
        if self.chunk_size < 8:
            raise RagtuneError(f"`chunk_size` must be at least 8 tokens, got {self.chunk_size}")
        if not 0 <= self.overlap < self.chunk_size // 2 + 1:
            raise RagtuneError(
                f"`overlap` must be between 0 and chunk_size/2 ({self.chunk_size // 2}), got {self.overlap}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def embedding_text(chunk: Chunk, title_in_embedding: bool = True) -> str:
    return f"{chunk.title} {chunk.text}" if title_in_embedding and chunk.title else chunk.text


class Chunker:
    """Split Documents into Chunks with `tokenizer` (a Hugging Face fast tokenizer)."""

    def __init__(self, tokenizer: Any, max_seq_length: int, config: ChunkerConfig = ChunkerConfig()):
        self.tokenizer = tokenizer
        self.max_tokens = max_seq_length - tokenizer.num_special_tokens_to_add(False)
        if config.chunk_size > self.max_tokens:
            logger.warning(
                "chunk_size %d is more than the embedder's maximum of %d tokens (max_seq_length %d "
                "minus special tokens); using %d",
                config.chunk_size,
                self.max_tokens,
                max_seq_length,
                self.max_tokens,
            )
            config = ChunkerConfig(
                self.max_tokens, min(config.overlap, self.max_tokens // 2), config.title_in_embedding
            )
        self.config = config

    def _encode(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        enc = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            verbose=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [[(a, b) for a, b in offs if b > a] for offs in enc["offset_mapping"]]

    def chunk(self, docs: Sequence[Document]) -> list[list[Chunk]]:
        """Chunks of each document, in document order."""
        out: list[list[Chunk]] = []
        for i in range(0, len(docs), 256):
            part = docs[i : i + 256]
            offsets = self._encode([d.text for d in part])
            titles = [d.title for d in part] if self.config.title_in_embedding else [""] * len(part)
            title_lens = [len(o) for o in self._encode(titles)] if any(titles) else [0] * len(part)
            for doc, offs, tlen in zip(part, offsets, title_lens):
                budget = self.config.chunk_size
                if tlen:  # the title is embedded with every chunk: leave it room (down to half a chunk)
                    budget = max(min(budget, self.max_tokens - tlen - 1), self.config.chunk_size // 2)
                out.append(self._split(doc, offs, budget))
        return out

    def _split(self, doc: Document, offs: list[tuple[int, int]], budget: int) -> list[Chunk]:
        text, n = doc.text, len(offs)
        if n == 0:
            return []
        level = _boundary_levels(text, offs)
        overlap = min(self.config.overlap, budget // 2)
        spans, s = [], 0
        while True:
            if n - s <= budget:
                e = n
            else:
                lo, hi = s + max(1, budget // 2), s + budget
                e = max(range(lo, hi + 1), key=lambda j: (level[j], j))
                if level[e] == NONE:
                    e = hi
            spans.append((s, e))
            if e >= n:
                break
            if overlap:
                target = max(e - overlap, s + 1)
                cand = range(target, e)
                nxt = max(cand, key=lambda j: (min(level[j], SENTENCE), -j)) if cand else e
                s = nxt if level[nxt] >= WORD else target
            else:
                s = e
        return [
            Chunk(
                id=f"{doc.id}#{i}",
                doc_id=doc.id,
                text=text[offs[a][0] : offs[b - 1][1]],
                start=offs[a][0],
                end=offs[b - 1][1],
                title=doc.title,
                source=doc.source,
                metadata=dict(doc.metadata),
            )
            for i, (a, b) in enumerate(spans)
        ]


def _boundary_levels(text: str, offs: list[tuple[int, int]]) -> list[int]:
    """level[i]: how good a cut before token i is (level[n] = end of text)."""
    levels = [NONE] * (len(offs) + 1)
    levels[0] = levels[-1] = PARAGRAPH
    for i in range(1, len(offs)):
        gap = text[offs[i - 1][1] : offs[i][0]]
        if not gap:
            continue
        if gap.count("\n") >= 2:
            levels[i] = PARAGRAPH
        elif "\n" in gap:
            levels[i] = LINE
        else:
            prev = text[max(0, offs[i - 1][1] - 2) : offs[i - 1][1]].rstrip(_CLOSERS)
            levels[i] = SENTENCE if prev and prev[-1] in _SENTENCE_END else WORD
    return levels
