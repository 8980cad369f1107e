"""Generator training data: load and validate QA / chat `.jsonl`, split by source document, mix tasks.

QA lines are the shared `ragtune.records` QA format; chat lines are `{"id", "messages": [...],
"doc_ids"?}` (validated here, since the shared records hold only QA). Every bad line is reported
with its line number, all at once, before any model is loaded.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import QAExample, RecordError, iter_jsonl, qa_from_dict

ROLES = ("system", "user", "assistant")
MAX_REPORTED = 10


@dataclass(frozen=True)
class ChatExample:
    id: str
    messages: tuple[dict[str, str], ...]
    doc_ids: tuple[str, ...] = ()


@dataclass
class TrainExample:
    """One rendered training conversation: the loss falls on its assistant turns only."""

    id: str
    messages: list[dict[str, str]]
    doc_ids: tuple[str, ...] = ()
    task: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def chat_from_dict(obj: dict[str, Any], where: str) -> ChatExample:
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RecordError(f"{where}: `messages` must be a non-empty list of {{role, content}} objects")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise RecordError(
                f'{where}: messages[{i}] must be {{"role": one of {list(ROLES)}, "content": string}}, got {m!r}'
            )
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise RecordError(f"{where}: no assistant message with content; every example needs an answer")
    if msgs[-1]["role"] != "assistant":
        raise RecordError(
            f"{where}: the last message must be the assistant's answer (got role {msgs[-1]['role']!r})"
        )
    doc_ids = obj.get("doc_ids") or ()
    if not isinstance(doc_ids, (list, tuple)):
        raise RecordError(f"{where}: `doc_ids` must be a list of document ids, got {doc_ids!r}")
    return ChatExample(
        id=str(obj.get("id", where)),
        messages=tuple(dict(m) for m in msgs),
        doc_ids=tuple(str(d) for d in doc_ids),
    )


def load_generator_data(path: str | Path) -> list[QAExample | ChatExample]:
    """Load QA and chat lines; raise RagtuneError listing every bad line (file:line: field: problem).

    Field errors are collected over the whole file; malformed JSON ends the scan at that line.
    """
    path = Path(path)
    if not path.is_file():
        raise RagtuneError(f"data file {path} does not exist; pass an existing .jsonl to --data")
    out: list[QAExample | ChatExample] = []
    errors: list[str] = []
    seen: set[str] = set()
    rows = iter_jsonl(path)
    while True:
        try:
            lineno, obj = next(rows)
        except StopIteration:
            break
        except RecordError as e:  # malformed JSON: the reader cannot go on past it
            errors.append(str(e))
            break
        except UnicodeDecodeError as e:
            raise RagtuneError(f"{path} is not UTF-8 text ({e}); save it as UTF-8 JSON lines") from None
        where = f"{path}:{lineno}"
        obj.setdefault("id", f"line{lineno}")
        try:
            ex = chat_from_dict(obj, where) if "messages" in obj else qa_from_dict(obj, where=where)
        except RecordError as e:
            errors.append(str(e))
            continue
        if ex.id in seen:
            errors.append(f"{where}: duplicate id {ex.id!r}; ids must be unique")
            continue
        seen.add(ex.id)
        out.append(ex)
    if errors:
        more = f"\n  ... and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise RagtuneError(
            f"{path}: {len(errors)} bad line(s):\n  " + "\n  ".join(errors[:MAX_REPORTED]) + more
        )
    if not out:
        raise RagtuneError(
            f"{path}: no examples; the file is empty. Each line needs question+answer or messages"
        )
    return out


def split_by_document(
    examples: Sequence[TrainExample], val_fraction: float, seed: int = 0
) -> tuple[list[TrainExample], list[TrainExample]]:
    """Train/validation split where no source document has examples on both sides.

    Examples sharing any gold document id are joined (union-find) into one group; whole groups go to
    one side. Examples without doc_ids form their own group (their id). Deterministic for a seed.
    """
    if val_fraction <= 0 or len(examples) < 2:
        return list(examples), []
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keys = []
    for ex in examples:
        nodes = [f"doc:{d}" for d in ex.doc_ids] or [f"ex:{ex.id}"]
        for n in nodes[1:]:
            parent[find(n)] = find(nodes[0])
        keys.append(nodes[0])
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(find(key), []).append(i)
    if len(groups) < 2:
        raise RagtuneError(
            "cannot split train/validation by document: every example shares one source document; "
            "set val_fraction 0 or add examples from other documents"
        )
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    target = max(1, round(val_fraction * len(examples)))
    val_idx: set[int] = set()
    for g in order:
        if len(val_idx) >= target:
            break
        if len(val_idx) + len(groups[g]) > len(examples) - 1:
            continue  # keep at least one training example
        val_idx.update(groups[g])
    train = [ex for i, ex in enumerate(examples) if i not in val_idx]
    val = [ex for i, ex in enumerate(examples) if i in val_idx]
    return train, val


def mix_tasks(parts: Sequence[tuple[list[TrainExample], float]], seed: int = 0) -> list[TrainExample]:
    """Weighted multi-task mix: task i gets round(N * w_i / sum w) examples, N the total example count.

    A task asked for more examples than it has is repeated (whole passes, then a seeded sample);
    fewer are sampled without replacement. The result is shuffled with the seed.
    """
    parts = [(exs, float(w)) for exs, w in parts if exs]
    if not parts:
        return []
    if len(parts) == 1:
        return list(parts[0][0])
    total = sum(len(exs) for exs, _ in parts)
    wsum = sum(w for _, w in parts)
    rng = random.Random(seed)
    out: list[TrainExample] = []
    for exs, w in parts:
        want = max(1, round(total * w / wsum))
        reps, rest = divmod(want, len(exs))
        out.extend(list(exs) * reps)
        out.extend(rng.sample(list(exs), rest))
    rng.shuffle(out)
    return out
