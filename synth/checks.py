"""The checks every written pair passes before it is kept, and the reasons a pair is dropped.

A generator's question is first checked by synth/prompt.py (not_a_question, copies_example,
off_sentence); a span the template finds no question for is no_template_question. Then, for every writer:

Words are `\\w+` runs, lower-cased, so punctuation and case never decide a check.
- supported: the answer's words occur in the chunk as one contiguous run of whole words. Stricter than a
  substring test ("art" is not found in "party", "1,500" is found in "1,500."), and it yields the chunk's
  own spelling of the answer, which is what the pair keeps.
- answer in question: the answer's words occur contiguously in the question ("When was X founded in
  1612?" / "1612").
- short: at most `max_answer_words` words: a span to copy, not a sentence (what EM/F1 can score).
- reader disagrees: the generator, asked the question with the chunk as its only passage, answers
  something else (synth/readback.py); run after the checks above, before deduplication.
- near duplicate: Jaccard similarity of the content words (question + answer, without stop words) to
  a pair kept earlier, anywhere in the index, at or above the threshold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NOT_A_QUESTION = "not_a_question"  # the generator's reply: no "?", under 3 words, or the blank left in
COPIES_EXAMPLE = "copies_example"  # the generator's question repeats a worked example of its prompt
OFF_SENTENCE = "off_sentence"  # the generator's question shares no content word with the span's sentence
NO_TEMPLATE = "no_template_question"  # the template writer found no wh-question for the span
NOT_IN_CHUNK = "answer_not_in_chunk"
TOO_LONG = "answer_too_long"
IN_QUESTION = "answer_in_question"
NEAR_DUPLICATE = "near_duplicate"
GENERATION_FAILED = "generation_failed"
READER_DISAGREES = "reader_disagrees"  # the read-back answer differs (synth/readback.py)
DROP_REASONS = (
    GENERATION_FAILED,
    NOT_A_QUESTION,
    COPIES_EXAMPLE,
    OFF_SENTENCE,
    NO_TEMPLATE,
    NOT_IN_CHUNK,
    TOO_LONG,
    IN_QUESTION,
    READER_DISAGREES,
    NEAR_DUPLICATE,
)
PER_PAIR = frozenset(DROP_REASONS) - {READER_DISAGREES, NEAR_DUPLICATE}  # decided before read-back

_WORD = re.compile(r"\w+")
_STOP = frozenset(
    (
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "did",
        "does",
        "do",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "into",
    )
)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def find_span(answer: str, text: str) -> str | None:
    """`text`'s own spelling of `answer` when the answer's words occur there contiguously, else None."""
    want = words(answer)
    if not want:
        return None
    found = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]
    n = len(want)
    for i in range(len(found) - n + 1):
        if all(found[i + j][0] == want[j] for j in range(n)):
            return text[found[i][1] : found[i + n - 1][2]]
    return None


def contains_words(haystack: str, needle: str) -> bool:
    want, have = words(needle), words(haystack)
    n = len(want)
    return n > 0 and any(have[i : i + n] == want for i in range(len(have) - n + 1))


def check_pair(question: str, answer: str, chunk: str, max_answer_words: int) -> tuple[str | None, str]:
    """(drop reason or None, the answer as the chunk spells it)."""
    if len(words(answer)) > max_answer_words:
        return TOO_LONG, answer
    span = find_span(answer, chunk)
    if span is None:
        return NOT_IN_CHUNK, answer
    if contains_words(question, span):
        return IN_QUESTION, span
    return None, span


def content_words(question: str, answer: str) -> frozenset[str]:
    return frozenset(w for w in words(f"{question} {answer}") if w not in _STOP)


class NearDuplicates:
    """Kept pairs' content-word sets, with an inverted index so a new pair is compared only with pairs
    that share a word."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.sets: list[frozenset[str]] = []
        self.by_word: dict[str, list[int]] = {}

    def is_duplicate(self, question: str, answer: str) -> bool:
        s = content_words(question, answer)
        candidates = {i for w in s for i in self.by_word.get(w, ())}
        return any(_jaccard(s, self.sets[i]) >= self.threshold for i in candidates) or (
            not s and any(not t for t in self.sets)
        )

    def add(self, question: str, answer: str) -> None:
        s = content_words(question, answer)
        for w in s:
            self.by_word.setdefault(w, []).append(len(self.sets))
        self.sets.append(s)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def split_documents(
    doc_ids: Sequence[str], validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """doc id -> "train" | "validation" | "test": a seeded shuffle of the documents, cut by the fractions.

    A split with a positive fraction gets at least one document when there are enough to leave one for
    training; a document's pairs all land in one split."""
    import random

    docs = sorted(set(doc_ids))
    random.Random(seed).shuffle(docs)
    n = len(docs)
    n_test = round(test_fraction * n)
    n_val = round(validation_fraction * n)
    if test_fraction > 0 and n_test == 0 and n - n_val >= 2:
        n_test = 1
    if validation_fraction > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    where = {d: "test" for d in docs[:n_test]}
    where |= {d: "validation" for d in docs[n_test : n_test + n_val]}
    where |= {d: "train" for d in docs[n_test + n_val :]}
    return where
