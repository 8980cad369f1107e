"""The verdict's default metric, *contains*: the gold answer in the reply on word boundaries after SQuAD
normalisation, guarded against replies that list candidates or ramble (eval/answers.py)."""

from __future__ import annotations

import pytest

from eval.answers import answer_contained, contained_unguarded, list_items, score_answer, verdict_metric
from ragtune.errors import RagtuneError

CANDIDATES = "bassoon, zither, flute, lute, harp, oboe, cello, viola, organ, drum"
# (reply, gold answers, contained?)
CASES = [
    ("The instrument of Tamir Ullin is the zither.", ["zither"], 1.0),  # a right answer in a sentence
    ("zither", ["The zither"], 1.0),
    ("Marie Curie was born in Warsaw, Poland, in 1867.", ["Warsaw"], 1.0),  # commas of a sentence
    ("About 16,000 people", ["16,000"], 1.0),  # a comma between digits is not a list
    ("It is the zither or the harp.", ["zither"], 1.0),  # two candidates: allowed
    (CANDIDATES, ["zither"], 0.0),  # ten candidates: not credited
    ("\n".join(f"- {w}" for w in CANDIDATES.split(", ")), ["zither"], 0.0),  # a bulleted list of ten
    ("It could be the zither, the harp, the lute or the flute.", ["zither"], 0.0),  # four candidates
    ("Paris, France, Europe", ["Paris, France"], 1.0),  # the gold's own items do not count against it
    (" ".join(["very"] * 30) + " zither", ["zither"], 0.0),  # 31 words for a one-word answer: rambling
    ("The zitherist played.", ["zither"], 0.0),  # word boundaries
    ("bassoon", ["zither"], 0.0),
]


@pytest.mark.parametrize("reply,golds,want", CASES)
def test_contains_credits_sentences_not_candidate_lists(reply, golds, want):
    assert answer_contained(reply, golds) == want


def test_ten_candidates_hold_the_gold_but_do_not_count():
    assert list_items(CANDIDATES) == 10
    assert (
        contained_unguarded(CANDIDATES, ["zither"]) == 1.0 and answer_contained(CANDIDATES, ["zither"]) == 0.0
    )
    row = score_answer(CANDIDATES, ["zither"])
    assert row["contains"] == 0.0 and row["contains_guarded"] == 1.0  # counted as refused by the guard
    assert "contains_guarded" not in score_answer("It is the zither.", ["zither"])


def test_verdict_metric_names():
    assert [verdict_metric(m) for m in ("em", "exact_match", "f1", "contains", "judge", None)] == [
        "exact_match",
        "exact_match",
        "f1",
        "contains",
        "judge",
        "contains",
    ]
    with pytest.raises(RagtuneError, match="choose one of em, f1, contains, judge"):
        verdict_metric("bleu")


def test_a_long_passage_carries_the_new_fact_the_guard_is_for_replies_only():
    """Which fact a system's passages carried is containment on word boundaries: a passage of 40 words is
    no list of guesses (the guard once made every real passage 'neither')."""
    passage = {
        "text": "Dalis Mirmir makes a home in the town of Linby. " * 4 + "Dalis Mirmir works as a cooper."
    }
    row = score_answer("a cooper", ["cooper"], [passage], stale_answers=["bookbinder"])
    assert row["context_freshness"] == "new" and row["freshness"] == "new"
    stale = {"text": passage["text"].replace("cooper", "bookbinder")}
    assert score_answer("a cooper", ["cooper"], [stale], ["bookbinder"])["context_freshness"] == "stale"
