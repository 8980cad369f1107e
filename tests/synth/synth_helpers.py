"""Helpers of the synth tests: a small world of documents and a scripted generator."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PEOPLE = [
    ("Mara Quill", "Brightwater", "potter", 1612),
    ("Tomas Reed", "Greenhollow", "baker", 1640),
    ("Ilse Varn", "Selby", "smith", 1587),
    ("Bren Oakes", "Avalon", "weaver", 1701),
    ("Cato Lind", "Marrow", "miller", 1655),
    ("Dara Fenn", "Ostry", "tailor", 1690),
    ("Edda Moss", "Pike", "mason", 1623),
    ("Fenn Hale", "Rook", "cooper", 1666),
    ("Gil Dorn", "Wend", "carter", 1599),
    ("Hana Roe", "Lisk", "dyer", 1712),
]


def world_docs() -> list[dict]:
    return [
        {
            "id": f"person{i}",
            "title": name,
            "text": f"{name} was born in {town} in {year}. {name} works as a {job} and keeps three bees.",
        }
        for i, (name, town, job, year) in enumerate(PEOPLE)
    ]


def write_docs(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


@dataclass
class Reply:
    text: str


def cloze_of(messages: list[dict[str, str]]) -> tuple[str, str]:
    """(the sentence with its blank, the answer) of a question-writing prompt."""
    m = re.match(r"Sentence: (?P<s>.*)\nAnswer: (?P<a>.*)$", messages[-1]["content"], re.DOTALL)
    assert m is not None, messages[-1]["content"]
    return m["s"], m["a"]


def is_read_back(messages: list[dict[str, str]]) -> bool:
    """A read-back prompt is ragtune's RAG prompt: its user turn starts with the delimited passage."""
    return messages[-1]["content"].startswith("<passage")


def read_back_parts(messages: list[dict[str, str]]) -> tuple[str, str]:
    """(the passage text, the question) of a read-back prompt."""
    m = re.match(
        r"<passage[^>]*>(?P<text>.*)</passage>\nQuestion: (?P<q>.*)$", messages[-1]["content"], re.DOTALL
    )
    assert m is not None, messages[-1]["content"]
    return m["text"], m["q"]


def good_read(passage: str, question: str) -> str:
    """A careful reader of the world's passages: the year, the town or the bees, when the question asks."""
    m = re.match(
        r"(?P<name>.+?) was born in (?P<town>\w+) in (?P<year>\d+)\. .* works as an? (?P<job>\w+)", passage
    )
    if m is None:
        return "I do not know."
    if "year" in question:
        return f"In {m['year']}."
    if "bees" in question:
        return "three"
    if "born" in question:
        return f"{m['town']}."
    return "I do not know."


def good_question(sentence: str, answer: str) -> str:
    """The question a good writer asks for the world's spans (the year, the bees, the town)."""
    name = re.split(r" (?:was|works)", sentence)[0]
    if answer.isdigit():
        return f"In what year was {name} born?"
    if answer == "three":  # the job too: "Dara Fenn" and "Fenn Hale" alone would be near duplicates
        job = re.search(r"works as an? (\w+)", sentence)
        return f"How many bees does {name}, the {job[1] if job else 'worker'}, keep?"
    return f"Where was {name} born?"


class ScriptedGenerator:
    """A stand-in for serve's Generator: `reply(sentence with its blank, answer)` writes each question and
    `read(passage, question)` answers each read-back prompt; counts both.

    By default it writes `good_question` and reads back like `good_read`."""

    def __init__(
        self,
        reply: Callable[[str, str], str] | None = None,
        fail_after: int | None = None,
        read: Callable[[str, str], str] = good_read,
    ):
        self.reply = reply or good_question
        self.read = read
        self.fail_after = (
            fail_after  # raise KeyboardInterrupt on the call after this many prompts of any kind
        )
        self.prompts = 0  # pair-writing prompts
        self.read_backs = 0  # read-back prompts
        self.calls = 0

    def generate(self, messages, max_tokens=64, stop=None, seed=0, temperature=0.0):
        if self.fail_after is not None and self.prompts + self.read_backs >= self.fail_after:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a run
        self.calls += 1
        out = []
        for m in messages:
            if is_read_back(m):
                self.read_backs += 1
                out.append(Reply(self.read(*read_back_parts(m))))
            else:
                self.prompts += 1
                out.append(Reply(self.reply(*cloze_of(m))))
        return out

    def close(self) -> None:
        pass
