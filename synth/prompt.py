"""The question-writing prompt and the parser of its replies.

A small model writes better pairs when it sees the exact shape it should reply in: a system line that
asks for one `Q: <question> A: <answer>` line with the answer copied from the passage, and two worked
examples (user passage -> assistant line) with different question words, so it does not copy one
question form. The reply is cut at the first newline (one pair per generation).

Decoding is greedy, so reruns are identical. The second, third, ... pair of a chunk differ from the
first by their prompt, not by sampling: each names one sentence of the chunk to ask about (in a seeded
order). Sampling a batch with one seed would draw the same random numbers for every row, and a
135M model then starts every question alike ("From what ...").
"""

from __future__ import annotations

import re

PROMPT_VERSION = "synth-qa-v2"

SYSTEM = (
    "You write one quiz question about a passage, and its answer: a short phrase (a name, a place, a "
    "number or a few words) copied exactly from the passage. The question must not contain the answer. "
    "Reply on one line as: Q: <question> A: <answer>"
)

SHOTS = (
    (
        (
            "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It was designed by the company "
            "of Gustave Eiffel and is 330 metres tall."
        ),
        "Q: In which city was the World's Fair of 1889 held? A: Paris",
    ),
    (
        "Marie Curie was born in Warsaw. She moved to Paris to study physics and later won two Nobel Prizes.",
        "Q: How many Nobel Prizes did Marie Curie win? A: two",
    ),
)

STOP = ("\n",)

_PAIR = re.compile(r"^\s*Q\s*[:.]\s*(?P<q>.+?)\s+A\s*[:.]\s*(?P<a>.+)$")
_LEAD = re.compile(r"^(?:A\s*[:.]\s*)+")  # "A: A: Warsaw"
_TRIM = " \t\"'`“”‘’.,;:"


def passage_text(text: str, title: str = "") -> str:
    return f"Passage ({title}): {text}" if title else f"Passage: {text}"


def ask(passage: str, focus: str | None) -> str:
    return f"{passage}\nAsk about this sentence: {focus}" if focus else passage


def build_prompt(text: str, title: str = "", focus: str | None = None) -> list[dict[str, str]]:
    """Chat messages asking for one pair about `text` (about its sentence `focus`, when given)."""
    msgs = [{"role": "system", "content": SYSTEM}]
    for shot, reply in SHOTS:
        msgs.append(
            {"role": "user", "content": ask(passage_text(shot), _holding(shot, reply) if focus else None)}
        )
        msgs.append({"role": "assistant", "content": reply})
    msgs.append({"role": "user", "content": ask(passage_text(text, title), focus)})
    return msgs


def _holding(shot: str, reply: str) -> str:
    answer = reply.rsplit("A: ", 1)[1]
    return next(s for s in sentences(shot) if answer in s)


def sentences(text: str, min_words: int = 4) -> list[str]:
    """The sentences of `text` with at least `min_words` words (a split after . ! or ?)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= min_words]


def focus_sentence(text: str, chunk_id: str, i: int, seed: int) -> str | None:
    """The sentence pair `i` of a chunk asks about: None for the first pair, then the chunk's sentences in
    an order seeded by (seed, chunk id), cycling when a chunk has fewer sentences than pairs."""
    found = sentences(text)
    if i == 0 or not found:
        return None
    import random

    order = list(range(len(found)))
    random.Random(f"{seed}:{chunk_id}").shuffle(order)
    return found[order[(i - 1) % len(found)]]


def parse_pair(reply: str) -> tuple[str, str] | None:
    """(question, answer) from a `Q: ... A: ...` reply, or None when it has no such shape.

    Only the first line counts; a question runs to its first `?` when the model wrote one."""
    line = reply.strip().split("\n", 1)[0]
    m = _PAIR.match(line)
    if m is None:
        return None
    q, a = m.group("q").strip(), _LEAD.sub("", m.group("a").strip())
    if "?" in q:
        q = q[: q.index("?") + 1]
    a = a.strip(_TRIM)
    if not a or len(q.split()) < 3:
        return None
    return q, a
