"""Per-question answer metrics: EM, F1 (SQuAD), ROUGE-L, answer contained, grounding, freshness.

ROUGE-L comes from Google's `rouge-score` package (the reference implementation). Containment,
grounding and freshness are ours: they are plain string checks on SQuAD-normalised text, small
enough that a library would add nothing.

*Contains* credits a reply that holds the gold answer on word boundaries after SQuAD normalisation
("The instrument of Tamir Ullin is the zither." for "zither"), as open-domain QA scores generated answers
(PopQA, Self-RAG). A guard keeps it from crediting a reply that names the gold among many candidates:
the reply may hold at most `MAX_EXTRA_ITEMS` more list items than the gold answer (items split at
commas, semicolons, slashes, bars, line breaks and "or"; a comma between digits does not split) and at
most max(`LENGTH_FLOOR`, `LENGTH_FACTOR` x the gold's words) normalised words. `GUARD_TEXT` says so in
the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from eval.squad import _golds, exact_match, normalize_answer, token_f1
from ragtune.errors import RagtuneError


@lru_cache(maxsize=1)
def _rouge():
    import logging

    from rouge_score import rouge_scorer

    logging.getLogger("absl").setLevel(logging.WARNING)  # rouge-score logs "Using default tokenizer" at INFO

    # No stemming, as HF `evaluate`'s default: answers are short spans, not summaries.
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, golds: str | Iterable[str]) -> float:
    """ROUGE-L F-measure (0-1) against the best-matching gold answer."""
    scorer = _rouge()
    return max(scorer.score(g, prediction)["rougeL"].fmeasure for g in _golds(golds))


def _contains(haystack: str, needle: str) -> bool:
    h, n = normalize_answer(haystack), normalize_answer(needle)
    if not n:  # the gold normalises to nothing (e.g. "The"): fall back to a plain lower-case search
        return needle.strip().lower() in haystack.lower() if needle.strip() else False
    return f" {n} " in f" {h} "


MAX_EXTRA_ITEMS = 2  # "Warsaw, Poland, in 1867" passes; "zither, bassoon, flute, lute" does not
LENGTH_FACTOR = 4
LENGTH_FLOOR = 24  # a one-sentence answer of a chatty model stays under it
GUARD_TEXT = (
    f"a reply counts as containing the answer only if it lists at most {MAX_EXTRA_ITEMS} more items than "
    f'the gold answer (split at , ; / | line breaks and "or") and has at most max({LENGTH_FLOOR}, '
    f"{LENGTH_FACTOR} × the gold's words) words, so that naming many candidates is not rewarded"
)
_ITEM_SEP = re.compile(r"(?<!\d),|,(?!\d)|[;/|\n]|\bor\b", re.IGNORECASE)


def list_items(text: str) -> int:
    """How many list items `text` names: the parts between separators that normalise to something."""
    return sum(1 for part in _ITEM_SEP.split(text) if normalize_answer(part))


def _guard_ok(prediction: str, gold: str) -> bool:
    words, gold_words = len(normalize_answer(prediction).split()), len(normalize_answer(gold).split())
    if words > max(LENGTH_FLOOR, LENGTH_FACTOR * gold_words):
        return False
    return list_items(prediction) <= max(list_items(gold), 1) + MAX_EXTRA_ITEMS


def contained_unguarded(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 when a normalised gold answer occurs, on token boundaries, in the normalised prediction."""
    return float(any(_contains(prediction, g) for g in _golds(golds)))


def answer_contained(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 when a normalised gold answer occurs on token boundaries in the normalised prediction and the
    prediction passes the guard against listing candidates (see the module docstring)."""
    return float(any(_contains(prediction, g) and _guard_ok(prediction, g) for g in _golds(golds)))


def _passage_text(p: Any) -> str:
    if isinstance(p, str):
        return p
    if isinstance(p, dict):
        return str(p.get("text", ""))
    return str(getattr(p, "text", ""))


def grounding(prediction: str, passages: Sequence[Any] | None) -> dict[str, float] | None:
    """Is the answer supported by the passages the system was given (and cites)?

    `supported`: the whole normalised answer occurs in one passage; `support`: the share of the
    answer's normalised tokens found anywhere in the passages. None when there were no passages
    (closed-book systems have nothing to be grounded in).
    """
    if not passages:
        return None
    texts = [_passage_text(p) for p in passages]
    toks = normalize_answer(prediction).split()
    if not toks:
        return {"supported": 0.0, "support": 0.0}
    supported = float(any(_contains(t, prediction) for t in texts))
    vocab = set(normalize_answer(" ".join(texts)).split())
    return {"supported": supported, "support": sum(t in vocab for t in toks) / len(toks)}


def _matches(prediction: str, answers: Sequence[str]) -> bool:
    return bool(answers) and (
        exact_match(prediction, answers) == 1.0 or answer_contained(prediction, answers) == 1.0
    )


def freshness_label(
    prediction: str, answers: Sequence[str], stale_answers: Sequence[str], *, guarded: bool = True
) -> str | None:
    """'new', 'stale', 'both' or 'neither' for a freshness question; None for an ordinary one.
    `guarded=False` for passages: their text is long by nature, so the guard against replies that list
    candidates does not apply, only containment on word boundaries."""
    if not stale_answers:
        return None
    match = (
        _matches if guarded else (lambda text, golds: bool(golds) and contained_unguarded(text, golds) == 1.0)
    )
    new, stale = match(prediction, answers), match(prediction, stale_answers)
    return "both" if new and stale else "new" if new else "stale" if stale else "neither"


ANSWER_METRICS = ("exact_match", "f1", "rouge_l", "contains")
# The metrics a verdict can decide on (`--metric`), with their short names; "judge" needs `--judge`.
VERDICT_METRICS = {"exact_match": "EM", "f1": "F1", "contains": "contains", "judge": "judge"}
ALIASES = {"em": "exact_match"}
# The default: a small chatty model answers in sentences ("The instrument of Tamir Ullin is the zither."),
# which exact match scores 0 like a wrong answer, so a verdict on EM dismisses retrieval for the reader's
# format, not its knowledge (FINDINGS.md: untuned RAG at EM 0 holds the answer in 30% of its replies).
# Guarded containment credits the sentence and not a list of guesses; EM and F1 stay in every table.
DEFAULT_METRIC = "contains"


def verdict_metric(name: str | None) -> str:
    """The canonical name of a verdict metric (`em` -> `exact_match`); DEFAULT_METRIC for None."""
    m = ALIASES.get(name, name) if name else DEFAULT_METRIC
    if m not in VERDICT_METRICS:
        raise RagtuneError(f"unknown verdict metric {name!r}; choose one of em, f1, contains, judge")
    return m


def score_answer(
    prediction: str,
    answers: Sequence[str],
    passages: Sequence[Any] | None = None,
    stale_answers: Sequence[str] = (),
) -> dict[str, Any]:
    """Every per-question answer metric for one prediction (0-1 scale)."""
    row: dict[str, Any] = {
        "exact_match": exact_match(prediction, answers),
        "f1": token_f1(prediction, answers),
        "rouge_l": rouge_l(prediction, answers),
        "contains": answer_contained(prediction, answers),
    }
    if row["contains"] == 0.0 and contained_unguarded(prediction, answers) == 1.0:
        row["contains_guarded"] = 1.0  # the gold is in the reply, among too many candidates or words
    g = grounding(prediction, passages)
    if g is not None:
        row["grounded"] = g["supported"]
        row["grounding_support"] = g["support"]
    fresh = freshness_label(prediction, answers, stale_answers)
    if fresh is not None:
        row["freshness"] = fresh
        if passages:  # which fact did the system's passages carry? (retriever vs generator memory)
            row["context_freshness"] = freshness_label(
                " ".join(_passage_text(p) for p in passages), answers, stale_answers, guarded=False
            )
    return row
