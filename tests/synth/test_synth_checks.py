"""The pair checks, the read-back agreement, the reply parser, near-duplicate detection and the document
split, table-driven."""

from __future__ import annotations

import pytest

from ragtune.prompt import build_messages
from ragtune.records import Passage
from synth import (
    NearDuplicates,
    Span,
    build_prompt,
    check_pair,
    parse_question,
    question_problem,
    split_documents,
)
from synth.readback import agrees, read_back_key, read_back_prompt

CHUNK = "Mara Quill founded Brightwater in 1612. The party of 1,500 guests met at the Old Mill."

# (question, answer, expected drop reason or None, the answer kept)
PAIR_CASES = [
    ("Who founded Brightwater?", "Mara Quill", None, "Mara Quill"),
    ("Who founded Brightwater?", "mara QUILL", None, "Mara Quill"),  # kept in the chunk's own spelling
    ("How many guests met?", "1,500", None, "1,500"),
    ("Where did the guests meet?", "the old mill.", None, "the Old Mill"),
    ("Who founded Brightwater?", "Tomas Reed", "answer_not_in_chunk", None),
    (
        "What met at the mill?",
        "art",
        "answer_not_in_chunk",
        None,
    ),  # "art" is inside "party", not a word of it
    ("Who founded it?", "Quill founded", None, "Quill founded"),
    ("When did Mara Quill found Brightwater in 1612?", "1612", "answer_in_question", None),
    ("Who is Mara Quill?", "Mara Quill", "answer_in_question", None),
    ("What happened?", "Mara Quill founded Brightwater in 1612 with the party", "answer_too_long", None),
]


@pytest.mark.parametrize(("question", "answer", "reason", "kept"), PAIR_CASES)
def test_check_pair(question, answer, reason, kept):
    got, span = check_pair(question, answer, CHUNK, max_answer_words=8)
    assert got == reason
    if kept is not None:
        assert span == kept


SPAN = Span("1612", "Mara Quill founded Brightwater in 1612.", 34, 38, "year")

# (generated reply, the question parsed from it, why it is refused or None)
QUESTION_CASES = [
    (
        "In what year did Mara Quill found Brightwater?",
        "In what year did Mara Quill found Brightwater?",
        None,
    ),
    ("Question: When was Brightwater founded? It was", "When was Brightwater founded?", None),
    ('"When was Brightwater founded?"\nAnswer: 1612', "When was Brightwater founded?", None),
    ("When was Brightwater founded", "When was Brightwater founded", "not_a_question"),
    ("Brightwater?", "Brightwater?", "not_a_question"),  # under three words
    ("Mara Quill founded Brightwater in ____?", "Mara Quill founded Brightwater in ____?", "not_a_question"),
    ("", "", "not_a_question"),
    (
        "In what year was the Eiffel Tower completed?",
        "In what year was the Eiffel Tower completed?",
        "copies_example",
    ),
    ("Where was Marie Curie born?", "Where was Marie Curie born?", "copies_example"),
    ("What is the capital of France?", "What is the capital of France?", "off_sentence"),
    ("In what year was it 1612?", "In what year was it 1612?", "off_sentence"),  # only the answer is shared
]


@pytest.mark.parametrize(("reply", "question", "problem"), QUESTION_CASES)
def test_generator_question_checks(reply, question, problem):
    assert parse_question(reply) == question
    assert question_problem(question, SPAN) == problem


def test_the_prompt_blanks_the_span_and_gives_the_answer():
    span = Span("repr()", "The built-in `repr()` returns a printable string.", 13, 21, "identifier")
    msgs = build_prompt(span)
    assert msgs[0]["role"] == "system" and len(msgs) == 8  # system, three worked examples, the ask
    assert msgs[-1]["content"] == "Sentence: The built-in ____ returns a printable string.\nAnswer: repr()"


# (kept pair, new pair, near duplicate at threshold 0.7?)
DUP_CASES = [
    (("Who founded Brightwater?", "Mara Quill"), ("Who founded Brightwater?", "Mara Quill"), True),
    (("Who founded Brightwater?", "Mara Quill"), ("who founded brightwater", "mara quill"), True),
    (
        ("In what year was the Eiffel Tower completed?", "1889"),
        ("When was the Eiffel Tower completed?", "1889"),
        True,
    ),  # stop words and question words do not count
    (
        ("In what year was the Eiffel Tower completed?", "1889"),
        ("In which year was the Eiffel Tower finished?", "1889"),
        False,
    ),
    (("Who founded Brightwater?", "Mara Quill"), ("Who founded Greenhollow?", "Tomas Reed"), False),
    (("Where does Mara Quill live?", "Brightwater"), ("What is the job of Mara Quill?", "potter"), False),
]


@pytest.mark.parametrize(("kept", "new", "duplicate"), DUP_CASES)
def test_near_duplicates(kept, new, duplicate):
    seen = NearDuplicates(0.7)
    seen.add(*kept)
    assert seen.is_duplicate(*new) is duplicate


def test_exact_threshold_drops_only_exact_duplicates():
    seen = NearDuplicates(1.0)
    seen.add("When was the Eiffel Tower completed?", "1889")
    assert seen.is_duplicate("When was the Eiffel Tower completed?", "1889")
    assert not seen.is_duplicate("When was the Eiffel Tower finished?", "1889")


@pytest.mark.parametrize(
    ("n_docs", "val", "test", "sizes"),
    [
        (10, 0.1, 0.2, {"train": 7, "validation": 1, "test": 2}),
        (3, 0.1, 0.2, {"train": 1, "validation": 1, "test": 1}),  # each asked-for split gets one document
        (
            2,
            0.1,
            0.2,
            {"train": 1, "validation": 0, "test": 1},
        ),  # never at the cost of the last training document
        (1, 0.1, 0.2, {"train": 1, "validation": 0, "test": 0}),
        (10, 0.0, 0.0, {"train": 10, "validation": 0, "test": 0}),
    ],
)
def test_split_documents(n_docs, val, test, sizes):
    docs = [f"d{i}" for i in range(n_docs)]
    where = split_documents(docs * 3, val, test, seed=0)  # a document named three times is one document
    assert set(where) == set(docs)
    assert {s: sum(v == s for v in where.values()) for s in sizes} == sizes
    assert (
        split_documents(list(reversed(docs)), val, test, seed=0) == where
    )  # the input order does not matter


# (read-back answer, generated answer, agree?)
AGREE_CASES = [
    ("Brightwater", "Brightwater", True),
    ("The Brightwater.", "brightwater", True),  # SQuAD normalisation: case, punctuation, articles
    ("in 1612", "1612", True),  # F1 0.67
    ("Gustave Eiffel", "the company of Gustave Eiffel", True),  # contained (F1 0.57 too)
    ("Mara Quill was born in Brightwater", "Brightwater", True),  # a sentence that names it (F1 0.29)
    ("two bees", "three bees", True),  # F1 exactly 0.5: the bar is inclusive (the known leak)
    ("Selby", "Brightwater", False),
    ("1621", "1612", False),  # numbers compare as words
    ("Quill", "Mara Quill founded", True),  # contained, F1 0.5
    ("art", "party", False),  # containment is on words, not characters
    ("I do not know.", "1623", False),
    ("", "1612", False),
    (None, "1612", False),  # the read-back failed
    ("The", "the", False),  # nothing left after normalisation
]


@pytest.mark.parametrize(("read", "answer", "expected"), AGREE_CASES)
def test_read_back_agreement(read, answer, expected):
    assert agrees(read, answer) is expected


def test_read_back_prompt_is_the_rag_prompt_with_the_chunk_alone():
    chunk = Passage(chunk_id="c1", doc_id="d1", text=CHUNK, title="Mara Quill")
    msgs = read_back_prompt("Who founded Brightwater?", chunk)
    assert msgs == build_messages("Who founded Brightwater?", [chunk])
    assert msgs[-1]["content"] == (
        f'<passage id=1 title="Mara Quill">{CHUNK}</passage>\nQuestion: Who founded Brightwater?'
    )
    keys = {read_back_key(k, q) for k in ("a", "b") for q in ("Who?", "Where?")}
    assert len(keys) == 4  # a pair's key and its question both decide the cached read-back
