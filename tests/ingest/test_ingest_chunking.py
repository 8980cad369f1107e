"""Chunking by the embedder's tokens: budgets, overlap, paragraph/sentence preference, exact offsets."""

from __future__ import annotations

import itertools
import logging

import pytest

from ingest import Chunker, ChunkerConfig
from ragtune.errors import RagtuneError
from ragtune.records import Document

PARAS = (
    "The old town has a market. It opens on every day of the week at dawn and closes late.\n\n"
    "The river runs past the mill. In the spring the water rises over the low stone banks.\n\n"
    "The school stands on the hill. Children walk up the long road to it in the morning!"
)
SENTENCES = " ".join(f"Sentence number {i} talks about the town of Brightwater." for i in range(12))
WORDS = " ".join(f"word{i}" for i in range(300))


def n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize(
    "text,size,overlap,ends_with",
    [
        (PARAS, 30, 0, "."),  # paragraph breaks inside the window win
        (SENTENCES, 40, 8, "."),  # no paragraphs: cut after a sentence
        (WORDS, 50, 10, None),  # one long run: cut between words
    ],
)
def test_chunks_respect_budget_offsets_and_boundaries(encoder, text, size, overlap, ends_with):
    chunker = Chunker(encoder.tokenizer, encoder.max_seq_length, ChunkerConfig(size, overlap))
    doc = Document("d", text)
    chunks = chunker.chunk([doc])[0]
    assert len(chunks) > 1
    for i, c in enumerate(chunks):
        assert c.id == f"d#{i}" and c.doc_id == "d"
        assert text[c.start : c.end] == c.text  # exact character spans
        assert n_tokens(encoder.tokenizer, c.text) <= size
        if ends_with and c is not chunks[-1]:
            assert c.text.rstrip().endswith(ends_with), c.text
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start
        assert (b.start < a.end) == (overlap > 0)  # overlap shares text; none leaves no gap of words
        if overlap == 0:
            assert text[a.end : b.start].strip() == ""


def test_paragraph_boundaries_are_preferred(encoder):
    chunker = Chunker(encoder.tokenizer, encoder.max_seq_length, ChunkerConfig(30, 0))
    chunks = chunker.chunk([Document("d", PARAS)])[0]
    assert [c.text for c in chunks] == PARAS.split("\n\n")


def test_short_document_is_one_chunk_and_keeps_metadata(encoder):
    chunker = Chunker(encoder.tokenizer, encoder.max_seq_length, ChunkerConfig(200, 40))
    doc = Document("x", "  Short text here.  ", title="T", source="s.txt", metadata={"lang": "en"})
    (c,) = chunker.chunk([doc])[0]
    assert (c.text, c.start, c.end, c.title, c.source, c.metadata) == (
        "Short text here.",
        2,
        18,
        "T",
        "s.txt",
        {"lang": "en"},
    )


def test_chunk_size_above_the_encoder_maximum_is_clamped_with_a_warning(encoder, caplog):
    with caplog.at_level(logging.WARNING):
        chunker = Chunker(encoder.tokenizer, encoder.max_seq_length, ChunkerConfig(1000, 40))
    assert chunker.config.chunk_size == encoder.max_seq_length - 2 == 254
    assert "chunk_size 1000 is more than the embedder's maximum of 254" in caplog.text
    long = " ".join(["Brightwater"] * 2000)
    chunks = chunker.chunk([Document("d", long)])[0]
    assert max(n_tokens(encoder.tokenizer, c.text) for c in chunks) <= 254


def test_title_tokens_leave_room_in_the_embedding(encoder):
    title = "A rather long title about the many rivers and bridges of Avalon"
    chunker = Chunker(encoder.tokenizer, 64, ChunkerConfig(60, 0))
    chunks = chunker.chunk([Document("d", WORDS, title=title)])[0]
    budget = 62 - n_tokens(encoder.tokenizer, title) - 1
    assert max(n_tokens(encoder.tokenizer, c.text) for c in chunks) == budget


@pytest.mark.parametrize(
    "size,overlap,field", [(4, 0, "chunk_size"), (100, 80, "overlap"), (100, -1, "overlap")]
)
def test_bad_chunker_settings_name_the_field(size, overlap, field):
    with pytest.raises(RagtuneError, match=field):
        ChunkerConfig(size, overlap)
