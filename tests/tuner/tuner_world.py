"""Tuner test data: a tiny fixed world of people and towns (documents + QA with gold doc_ids)."""

from __future__ import annotations

import json
from pathlib import Path

PEOPLE = [
    ("Mara Quill", "Brightwater", "potter"),
    ("Tomas Reed", "Greenhollow", "baker"),
    ("Ilse Varn", "Selby", "smith"),
    ("Bren Oakes", "Avalon", "weaver"),
    ("Cato Lind", "Marrow", "miller"),
    ("Dara Fenn", "Ostry", "tailor"),
    ("Edda Moss", "Pike", "mason"),
    ("Fenn Hale", "Rook", "cooper"),
]
QUESTIONS = [
    "Where does {n} live?",
    "What town is home to {n}?",
    "What is the job of {n}?",
    "{n} works as what?",
]


def world_rows() -> tuple[list[dict], list[dict]]:
    """(documents, QA rows): one document per person, four questions each (32 examples, 8 documents)."""
    docs, qa = [], []
    for i, (name, town, job) in enumerate(PEOPLE):
        docs.append(
            {
                "id": f"person{i}",
                "title": name,
                "text": f"{name} lives in {town}. {name} works as a {job} and keeps bees.",
            }
        )
        for j, q in enumerate(QUESTIONS):
            qa.append(
                {
                    "id": f"q{i}-{j}",
                    "question": q.format(n=name),
                    "answer": town if j < 2 else job,
                    "doc_ids": [f"person{i}"],
                }
            )
    return docs, qa


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
