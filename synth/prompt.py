"""The generator writer: answer-aware question generation, and the checks its question must pass.

The answer is chosen first (synth/spans.py); the generator is asked only for the question whose answer
it is. The prompt shows the span's sentence with the span blanked out and the answer beside it (the
cloze-rewrite form, the one FINDINGS.md measured best for the 135M default: about 4 of 16 good against 1
of 16 for passage + answer), after three worked examples of different types (a year, an identifier, a
place). Greedy decoding, one line.

Its question is accepted only when it is a question (ends with "?", at least three words, no blank
left), does not repeat a worked example, and shares a content word with the span's sentence beyond the
answer; otherwise the pair is dropped (writer "generator") or written by the template instead (writer
"auto"), each counted by reason.
"""

from __future__ import annotations

import re

from synth.checks import COPIES_EXAMPLE, NOT_A_QUESTION, OFF_SENTENCE, content_words, words
from synth.spans import Span

PROMPT_VERSION = "synth-question-v1"
BLANK = "____"
STOP = ("\n",)

SYSTEM = (
    "You turn a sentence into a question. A part of the sentence is replaced by ____ and given as the "
    "answer. Write one short question, using the words of the sentence, whose answer is exactly that "
    "answer. Reply with the question only."
)

SHOTS = (
    (
        "The Eiffel Tower was completed in ____ for the World's Fair in Paris.",
        "1889",
        "In what year was the Eiffel Tower completed?",
    ),
    (
        "The built-in function ____ returns the number of items in a container.",
        "len()",
        "Which built-in function returns the number of items in a container?",
    ),
    (
        "Marie Curie was born in ____ and moved to Paris to study physics.",
        "Warsaw",
        "Where was Marie Curie born?",
    ),
)

_LEAD = re.compile(r"^\s*(?:Q(?:uestion)?\s*[:.]\s*)+", re.IGNORECASE)
_SHOT_WORDS = [content_words(q, "") for _, _, q in SHOTS]


def cloze(span: Span) -> str:
    """The span's sentence with the span (and its backticks) replaced by the blank."""
    return f"{span.sentence[: span.start]}{BLANK}{span.sentence[span.end :]}"


def user_turn(sentence: str, answer: str) -> str:
    return f"Sentence: {sentence}\nAnswer: {answer}"


def build_prompt(span: Span) -> list[dict[str, str]]:
    """Chat messages asking for the question whose answer is `span`."""
    msgs = [{"role": "system", "content": SYSTEM}]
    for sentence, answer, question in SHOTS:
        msgs.append({"role": "user", "content": user_turn(sentence, answer)})
        msgs.append({"role": "assistant", "content": question})
    msgs.append({"role": "user", "content": user_turn(cloze(span), span.text)})
    return msgs


def parse_question(reply: str) -> str:
    """The question of a reply: its first line, a `Question:` label dropped, cut after its first `?`."""
    line = _LEAD.sub("", reply.strip().split("\n", 1)[0]).strip().strip("\"'“”")
    return line[: line.index("?") + 1] if "?" in line else line


def question_problem(question: str, span: Span) -> str | None:
    """Why the generator's question is refused (a QUESTION_REASONS value), or None when it is usable."""
    if not question.endswith("?") or len(words(question)) < 3 or BLANK[:2] in question:
        return NOT_A_QUESTION
    mine = content_words(question, "")
    if any(mine and len(mine & shot) / len(mine | shot) >= 0.5 for shot in _SHOT_WORDS):
        return COPIES_EXAMPLE
    if not (mine & (content_words(span.sentence, "") - set(words(span.text)))):
        return OFF_SENTENCE
    return None
