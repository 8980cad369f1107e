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


def passage_of(messages: list[dict[str, str]]) -> str:
    """The last user message of a synth prompt without its `Passage (...)` label: the chunk text, and the
    sentence to ask about when the prompt names one."""
    return re.sub(r"^Passage(?: \([^)]*\))?: ", "", messages[-1]["content"])


def good_reply(passage: str, i: int = 0) -> str:
    """A pair the checks keep: the town (first pair) or the job (later pairs) of the person in the passage."""
    m = re.match(
        r"(?P<name>.+?) was born in (?P<town>\w+) in (?P<year>\d+)\. .* works as an? (?P<job>\w+)", passage
    )
    if m is None:
        return "nothing to ask"
    if i == 0:
        return f"Q: In which town was {m['name']} born? A: {m['town']}."
    return f"Q: What does {m['name']} do for a living? A: {m['job']}"


class ScriptedGenerator:
    """A stand-in for serve's Generator: `reply(prompt, seed, temperature)` writes each reply; counts calls.

    By default it answers the town for a whole-chunk prompt and the job for a one-sentence prompt."""

    def __init__(self, reply: Callable[[str, int, float], str] | None = None, fail_after: int | None = None):
        self.reply = reply or (lambda p, seed, t: good_reply(p, int("\nAsk about" in p)))
        self.fail_after = fail_after  # raise KeyboardInterrupt on the call after this many prompts
        self.prompts = 0
        self.calls = 0

    def generate(self, messages, max_tokens=64, stop=None, seed=0, temperature=0.0):
        if self.fail_after is not None and self.prompts >= self.fail_after:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a run
        self.calls += 1
        self.prompts += len(messages)
        return [Reply(self.reply(passage_of(m), seed, temperature)) for m in messages]

    def close(self) -> None:
        pass
