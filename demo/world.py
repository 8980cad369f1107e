"""A deterministic fictional knowledge world: people with attributes, documents, QA splits, updates.

`make_world(kind="target")` is what the demo teaches (no model can know it beforehand);
`make_world(kind="general")` is a second, disjoint world the tiny base model learns language and
reading from (see `demo.general`). Same seed and sizes give the same world, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from demo import vocab
from ragtune.records import write_jsonl


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    attrs: dict[str, str]
    # per-document wording choices: sentence template index per attribute, order, filler
    wording: dict[str, int] = field(default_factory=dict)
    order: tuple[str, ...] = vocab.ATTRIBUTES
    trait: str = ""

    def document(self) -> dict[str, str]:
        """The document describing this person: `{"id", "title", "text"}` (an ingest .jsonl row)."""
        fill = {"name": self.name, **self.attrs}
        sentences = [vocab.FACT_SENTENCES[a][self.wording.get(a, 0)].format(**fill) for a in self.order]
        if self.trait:
            filler = vocab.FILLER_SENTENCES[self.wording.get("filler", 0)].format(
                name=self.name, trait=self.trait
            )
            sentences.insert(self.wording.get("filler_at", 0) % (len(sentences) + 1), filler)
        return {"id": self.id, "title": self.name, "text": " ".join(sentences)}


@dataclass
class World:
    kind: str
    seed: int
    people: list[Person]
    towns: list[str]

    @property
    def documents(self) -> list[dict[str, str]]:
        return [p.document() for p in self.people]

    def qa(self, person: Person, attr: str, template: int) -> dict[str, Any]:
        q = vocab.QUESTIONS[attr][template].format(name=person.name)
        return {
            "id": f"{person.id}:{attr}:q{template}",
            "question": q,
            "answer": person.attrs[attr],
            "doc_ids": [person.id],
        }

    def splits(self, n_test: int | None = None, n_validation: int | None = None) -> dict[str, list[dict]]:
        """Leakage-free QA splits by question template: train / validation / test wordings are disjoint.

        Every fact has train questions (so closed-book fine-tuning can learn it) but the test asks it
        in a wording never trained on. Test and validation draw one held-out template per fact and
        keep a seeded sample of `n_test` / `n_validation` facts.
        """
        rng = random.Random(f"{self.seed}:splits")
        by_split: dict[str, list[int]] = {}
        for t, s in vocab.TEMPLATE_SPLIT.items():
            by_split.setdefault(s, []).append(t)
        out: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
        for p in self.people:
            for a in vocab.ATTRIBUTES:
                out["train"].extend(self.qa(p, a, t) for t in by_split["train"])
                out["validation"].append(self.qa(p, a, rng.choice(by_split["validation"])))
                out["test"].append(self.qa(p, a, rng.choice(by_split["test"])))
        for name, n in (("test", n_test), ("validation", n_validation)):
            if n is not None and n < len(out[name]):
                out[name] = sorted(rng.sample(out[name], n), key=lambda r: r["id"])
        return out

    def update(self, fraction: float = 0.15, attrs: tuple[str, ...] = ("town", "job", "instrument")):
        """Change one fact of a seeded `fraction` of people: (updated world, freshness QA records).

        Each freshness record asks the changed fact in a test wording; `answer` is the new value and
        `stale_answer` the old one (what a model that memorised the old documents would say).
        """
        rng = random.Random(f"{self.seed}:update")
        n = max(1, round(fraction * len(self.people)))
        chosen = set(rng.sample(range(len(self.people)), n))
        choices = {"town": self.towns, "job": vocab.JOBS, "instrument": vocab.INSTRUMENTS}
        people, fresh = [], []
        test_templates = [t for t, s in vocab.TEMPLATE_SPLIT.items() if s == "test"]
        for i, p in enumerate(self.people):
            if i not in chosen:
                people.append(p)
                continue
            attr = rng.choice(attrs)
            old = p.attrs[attr]
            new = rng.choice([v for v in choices[attr] if v != old])
            q = replace(p, attrs={**p.attrs, attr: new})
            people.append(q)
            rec = self.qa(q, attr, rng.choice(test_templates))
            rec["id"] = f"{p.id}:{attr}:update"
            rec["stale_answer"] = old
            fresh.append(rec)
        return World(self.kind, self.seed, people, self.towns), fresh


def make_world(n_people: int, seed: int = 0, kind: str = "target", n_towns: int | None = None) -> World:
    """Generate a world of `n_people` people; names and towns never occur in the other `kind`."""
    if kind not in ("target", "general"):
        raise ValueError(f"`kind` must be 'target' or 'general', got {kind!r}")
    if n_people < 1:
        raise ValueError(f"`n_people` should be a positive integer but the value passed is {n_people}")
    rng = random.Random(f"{kind}:{seed}")
    n_towns = n_towns or max(4, n_people // 6)
    towns = _unique(rng, vocab.make_town_name, n_towns, kind)
    names = _unique(rng, vocab.make_person_name, n_people, kind)
    people = []
    prefix = "person" if kind == "target" else "g"
    for i, name in enumerate(names):
        attrs = {
            "town": rng.choice(towns),
            "job": rng.choice(vocab.JOBS),
            "year": str(rng.randint(1650, 1999)),
            "instrument": rng.choice(vocab.INSTRUMENTS),
        }
        wording = {a: rng.randrange(len(vocab.FACT_SENTENCES[a])) for a in vocab.ATTRIBUTES}
        wording["filler"] = rng.randrange(len(vocab.FILLER_SENTENCES))
        wording["filler_at"] = rng.randrange(5)
        order = tuple(rng.sample(vocab.ATTRIBUTES, len(vocab.ATTRIBUTES)))
        people.append(Person(f"{prefix}-{i:04d}", name, attrs, wording, order, rng.choice(vocab.TRAITS)))
    return World(kind, seed, people, towns)


def _unique(rng: random.Random, make, n: int, kind: str) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(200 * n + 1000):
        if len(out) == n:
            return out
        w = make(rng)
        if w not in seen and vocab.world_of(w) == kind:
            seen.add(w)
            out.append(w)
    raise ValueError(f"could not draw {n} distinct names for the {kind} world; ask for fewer")


def write_world(
    world: World,
    out_dir: str | Path,
    *,
    n_test: int | None = None,
    n_validation: int | None = None,
    update_fraction: float = 0.15,
) -> dict[str, Path]:
    """Write documents, QA splits, the updated documents and the freshness QA; return the paths."""
    out = Path(out_dir)
    paths = {
        "documents": out / "documents" / "people.jsonl",
        "updated_documents": out / "documents_updated" / "people.jsonl",
        "train": out / "qa" / "train.jsonl",
        "validation": out / "qa" / "validation.jsonl",
        "test": out / "qa" / "test.jsonl",
        "freshness": out / "qa" / "freshness.jsonl",
    }
    write_jsonl(paths["documents"], world.documents)
    for name, rows in world.splits(n_test, n_validation).items():
        write_jsonl(paths[name], rows)
    updated, fresh = world.update(update_fraction)
    write_jsonl(paths["updated_documents"], updated.documents)
    write_jsonl(paths["freshness"], fresh)
    return paths
