"""Training-set builders: closed-book SFT and RAFT (question + retrieved passages with distractors).

Both render their prompts through `ragtune.prompt.build_messages`, the one RAG prompt the server
also uses, so a model is trained on exactly the format it is served with.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.prompt import build_messages
from ragtune.records import Passage, QAExample
from tuner.gen_data import ChatExample, TrainExample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstructionTemplate:
    """System prompt and user template; the rendered question still goes through `build_messages`."""

    system_prompt: str | None = None
    user_template: str | None = None  # e.g. "Reply in one phrase. {question}"

    def question(self, q: str) -> str:
        return self.user_template.format(question=q) if self.user_template else q


def _template(system_prompt: str | None, user_template: str | None) -> InstructionTemplate:
    if user_template is not None and "{question}" not in user_template:
        raise RagtuneError(f"`user_template` must contain {{question}}, got {user_template!r}")
    return InstructionTemplate(system_prompt, user_template)


def build_sft_examples(
    examples: Sequence[QAExample | ChatExample],
    *,
    system_prompt: str | None = None,
    user_template: str | None = None,
    task: str = "closed-book",
) -> list[TrainExample]:
    """Closed-book SFT: question -> answer (the first accepted answer). Chat examples pass through."""
    tpl = _template(system_prompt, user_template)
    out = []
    for ex in examples:
        if isinstance(ex, ChatExample):
            out.append(TrainExample(ex.id, [dict(m) for m in ex.messages], ex.doc_ids, task))
            continue
        msgs = build_messages(tpl.question(ex.question), None, tpl.system_prompt)
        msgs.append({"role": "assistant", "content": ex.answer})
        out.append(TrainExample(ex.id, msgs, ex.doc_ids, task))
    return out


def open_retriever(retriever_or_index: Any, mode: str | None = None) -> Any:
    """A Retriever (anything with `search_batch`) as is, or `retriever.Retriever.open(index_dir)` searching
    with `mode` (dense, bm25, hybrid; None: the default)."""
    if hasattr(retriever_or_index, "search_batch"):
        return retriever_or_index
    path = Path(retriever_or_index)
    if not path.is_dir():
        raise RagtuneError(
            f"index {path} does not exist; build it with `ragtune ingest SOURCE... --index {path}`"
        )
    from retriever import Retriever

    return Retriever.open(path, mode=mode)


def build_raft_examples(
    examples: Sequence[QAExample],
    retriever: Any,
    *,
    k: int = 4,
    p_gold: float = 0.8,
    seed: int = 0,
    quote: bool = False,
    system_prompt: str | None = None,
    user_template: str | None = None,
    search_k: int | None = None,
    task: str = "raft",
) -> list[TrainExample]:
    """RAFT: each question with k passages from the index, the gold one kept in a fraction `p_gold`.

    `retriever` is a `retriever.Retriever` (or an index folder). For each question the index is
    searched; passages from the question's gold documents (`doc_ids`) are gold, all others are
    distractors, so a distractor is never gold. Exactly round(p_gold * n) examples (chosen with the
    seed) get one gold passage plus k-1 distractors; the rest get k distractors. Order is shuffled.
    A gold passage not retrieved is taken from the index's chunks of that document, else from the
    example's `context`. `quote=True` appends the gold passage's sentence holding the answer.
    Each result's `meta` holds `has_gold`, `gold_position` (1-based or None) and `passage_doc_ids`.
    """
    _check_raft_input(examples, k, p_gold)
    tpl = _template(system_prompt, user_template)
    ret = open_retriever(retriever)
    n = len(examples)
    order = list(range(n))
    rng = random.Random(seed)
    rng.shuffle(order)
    keep_gold = set(order[: round(p_gold * n)])
    hits = ret.search_batch([ex.question for ex in examples], search_k or max(3 * k, k + 8))
    missing = [
        ex
        for i, ex in enumerate(examples)
        if i in keep_gold and not any(p.doc_id in ex.doc_ids for p in hits[i])
    ]
    stored = _stored_gold(ret, missing)
    out, short, no_gold = [], 0, 0
    for i, ex in enumerate(examples):
        gold = _gold_passage(ex, hits[i], stored) if i in keep_gold else None
        no_gold += i in keep_gold and gold is None
        want = k - 1 if gold else k
        gold_ids = set(ex.doc_ids)
        passages = [p for p in hits[i] if p.doc_id not in gold_ids][:want]  # distractors: never gold
        short += len(passages) < want
        if gold is not None:
            passages.append(gold)
        rng.shuffle(passages)
        out.append(_raft_example(ex, passages, gold, tpl, quote, task))
    if short:
        log.warning("RAFT: %d of %d examples got fewer than k=%d passages (the index is small)", short, n, k)
    if no_gold:
        log.warning(
            "RAFT: %d examples meant to keep gold have no gold passage in the index or `context`", no_gold
        )
    return out


def _check_raft_input(examples: Sequence[QAExample], k: int, p_gold: float) -> None:
    if not 0.0 <= p_gold <= 1.0:
        raise RagtuneError(f"`p_gold` must be between 0 and 1 (got {p_gold!r})")
    if k < 1:
        raise RagtuneError(f"`k` should be a positive integer but the value passed is {k}")
    bad = [ex.id for ex in examples if isinstance(ex, ChatExample) or not ex.doc_ids]
    if bad:
        raise RagtuneError(
            f"RAFT needs question/answer examples with `doc_ids` (to tell gold from distractors); "
            f"{len(bad)} lack them, e.g. {bad[:3]}. Add doc_ids or use mode closed-book for that data"
        )


def _gold_passage(ex: QAExample, hits: Sequence[Passage], stored: dict[str, Passage]) -> Passage | None:
    """The retrieved passage of a gold document, else the stored chunk, else the example's `context`."""
    gold = next((p for p in hits if p.doc_id in ex.doc_ids), None) or stored.get(ex.id)
    if gold is None and ex.context:
        gold = Passage(chunk_id=f"{ex.id}#context", doc_id=ex.doc_ids[0], text=ex.context)
    return gold


def _raft_example(
    ex: QAExample,
    passages: list[Passage],
    gold: Passage | None,
    tpl: InstructionTemplate,
    quote: bool,
    task: str,
) -> TrainExample:
    answer = ex.answer
    if quote and gold is not None:
        sentence = _supporting_sentence(gold.text, ex.answers)
        if sentence:
            answer = f'{answer}\nQuote: "{sentence}"'
    msgs = build_messages(tpl.question(ex.question), passages, tpl.system_prompt)
    msgs.append({"role": "assistant", "content": answer})
    return TrainExample(
        ex.id,
        msgs,
        ex.doc_ids,
        task,
        meta={
            "has_gold": gold is not None,
            "gold_position": passages.index(gold) + 1 if gold is not None else None,
            "passage_doc_ids": [p.doc_id for p in passages],
            "passage_chunk_ids": [p.chunk_id for p in passages],
        },
    )


def _stored_gold(ret: Any, examples: Sequence[QAExample]) -> dict[str, Passage]:
    """The best stored chunk of each example's gold documents (the one holding the answer, else the first)."""
    index = getattr(ret, "index", None)
    if not examples or not hasattr(index, "passages_of"):
        return {}
    by_doc = index.passages_of(sorted({d for ex in examples for d in ex.doc_ids}))
    out = {}
    for ex in examples:
        chunks = [p for d in ex.doc_ids for p in by_doc.get(d, [])]
        if chunks:
            out[ex.id] = next(
                (p for p in chunks if any(a.lower() in p.text.lower() for a in ex.answers)), chunks[0]
            )
    return out


def _supporting_sentence(text: str, answers: Sequence[str]) -> str | None:
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if any(a.strip() and a.lower() in sentence.lower() for a in answers):
            return sentence.strip()
    return None
