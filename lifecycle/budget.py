"""The time budget: how many questions synth asks (chunks x spans per chunk), how many examples training sees and how many
synthetic test questions are scored, so that a run on a laptop ends in about `--budget-minutes`.

The costs are seconds measured on 2 CPU cores without AVX-512 (the slower of the machine kinds this
project meets) with the default 135M generator; a bigger base model or a faster machine shifts them, and
the report states the plan and what it cut, so the reader knows what was left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ragtune.errors import RagtuneError

# Seconds, measured on the default generator with 2 cores (AVX2, fp32); see docs/benchmarks.md (ragtune run).
FIXED_S = 60.0  # reading the documents and checking the inputs, the report; a cold model cache adds ~25 s
SYNTH_S_PER_QUESTION = 0.7  # one span's question written (template) and read back by the generator
TRAIN_S_PER_EXAMPLE = 3.2  # one RAFT example (question + top_k passages) through a LoRA step
CLOSED_BOOK_S_PER_EXAMPLE = 0.8
ANSWER_S = {"rag": 1.25, "closed": 0.4}  # one answer in evaluation, with and without passages
# One general-knowledge question for one model in the forgetting check (a closed-book answer and the
# gold answer's perplexity): the demo's forgetting step, 50 questions x base and one fine-tune in ~45 s.
FORGET_S_PER_QUESTION = 0.45
FORGET_SHARE = 0.2  # at most this part of the evaluation share goes to the forgetting check
MIN_GENERAL_QUESTIONS = 10  # fewer measure nothing: the check is left out and the report says so
TUNED = ("ft", "raft")  # the fine-tuned generators; each one's forgetting is measured against the base
SHARES = {"synth": 0.25, "train": 0.4, "eval": 0.35}
MAX_QUESTIONS_PER_CHUNK = 4  # spans asked per chunk when the budget covers every chunk more than once
MIN_TRAIN_EXAMPLES = 16  # two optimizer steps of batch 8: less is no training
MIN_TEST_QUESTIONS = 20


@dataclass
class Plan:
    budget_s: float
    max_chunks: int  # chunks synth asks about
    chunks: int  # chunks in the index
    questions_per_chunk: int  # spans synth asks about per chunk
    max_train_examples: int  # examples (epochs x pairs) the generator fine-tunes may see
    max_test_questions: int  # synthetic test questions scored per system
    general_questions: int = 0  # general-knowledge questions of the forgetting check (0: not measured)
    cuts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def answer_seconds(systems: list[str]) -> float:
    return sum(ANSWER_S["rag" if s.endswith("+rag") or s == "rag" else "closed"] for s in systems)


def _train_examples(budget_minutes: float) -> int:
    return int(max(budget_minutes * 60 - FIXED_S, 0) * SHARES["train"] / TRAIN_S_PER_EXAMPLE)


def check_budget(budget_minutes: float, trains: bool) -> None:
    """An error when the budget leaves no room for any training (when a chosen system needs it)."""
    if trains and _train_examples(budget_minutes) < MIN_TRAIN_EXAMPLES:
        need = math.ceil((FIXED_S + MIN_TRAIN_EXAMPLES * TRAIN_S_PER_EXAMPLE / SHARES["train"]) / 60)
        raise RagtuneError(
            f"--budget-minutes {budget_minutes:g} leaves no time for training (after loading, ingest and "
            f"export, about {FIXED_S / 60:.1f} min); give at least {need} minutes, or --systems without "
            "fine-tuned systems (base,fewshot,rag,fewshot+rag)"
        )


def tuned_models(systems: list[str]) -> list[str]:
    """The fine-tuned generators the systems run ("raft" for raft+rag, ...), in a fixed order."""
    heads = {s.split("+")[0] for s in systems}
    return [t for t in TUNED if t in heads]


def general_questions(eval_s: float, n_tuned: int, available: int) -> int:
    """General questions for the forgetting check of `n_tuned` fine-tunes (the base answers them too)."""
    if not n_tuned:
        return 0
    n = min(available, int(eval_s * FORGET_SHARE / (FORGET_S_PER_QUESTION * (1 + n_tuned))))
    return n if n >= MIN_GENERAL_QUESTIONS else 0


def make_plan(
    budget_minutes: float,
    chunks: int,
    systems: list[str],
    trains: bool,
    n_user: int = 0,
    n_general: int = 50,
) -> Plan:
    """Split the budget between question writing, training and evaluation; the forgetting check of every
    fine-tune takes up to FORGET_SHARE of the evaluation share first (at most `n_general` questions), the
    user's `n_user` questions are always scored, and the synthetic test sample gets what is left."""
    check_budget(budget_minutes, trains)
    budget = budget_minutes * 60
    left = budget - FIXED_S
    train_examples = _train_examples(budget_minutes)
    questions = max(1, int(max(left, 0) * SHARES["synth"] / SYNTH_S_PER_QUESTION))
    per_chunk = max(1, min(MAX_QUESTIONS_PER_CHUNK, questions // max(chunks, 1)))
    max_chunks = min(chunks, max(1, questions // per_chunk))
    per_q = answer_seconds(systems)
    eval_s = max(left, 0) * SHARES["eval"]
    n_tuned = len(tuned_models(systems))
    general = general_questions(eval_s, n_tuned, n_general)
    eval_s -= general * FORGET_S_PER_QUESTION * (1 + n_tuned)
    max_test = max(MIN_TEST_QUESTIONS, int(eval_s / per_q) - n_user)
    plan = Plan(budget, max_chunks, chunks, per_chunk, train_examples, max_test, general)
    if n_tuned and general < n_general:
        plan.cuts.append(
            f"forgetting measured on {general} of {n_general} general questions"
            if general
            else "forgetting not measured: the budget leaves too few general questions for it"
        )
    if max_chunks < chunks:
        plan.cuts.append(
            f"synth asked about {max_chunks} of {chunks} chunks (a seeded sample; "
            f"--budget-minutes {math.ceil(budget_minutes * chunks / max_chunks):d} covers them all)"
        )
    return plan


def epochs_for(plan: Plan, n_train: int, wanted: float) -> tuple[float, str | None]:
    """Training epochs within the plan: `wanted`, or fewer with a note saying so."""
    if n_train * wanted <= plan.max_train_examples:
        return wanted, None
    epochs = round(plan.max_train_examples / n_train, 3)
    return epochs, (
        f"training saw {plan.max_train_examples} examples ({epochs:g} epochs of {n_train} pairs) instead of "
        f"{wanted:g} epochs"
    )
