"""SQuAD v1.1 answer normalisation, exact match and token F1, exactly as the official `evaluate-v1.1.py`.

Shared by eval (scoring systems' answers) and synth (the read-back check of a generated pair), so both
compare answers the same way. Hand-written on purpose: the official script is a 90-line file that no
maintained PyPI package ships unchanged (HF `evaluate` fetches it from the Hub at run time, which this
project cannot do), and eval's figures must *equal* it. The functions below are the script's own, line
for line (normalisation: lower case, drop punctuation, drop the articles a/an/the, collapse whitespace;
F1 on whitespace tokens with a multiset overlap; max over the gold answers). `tests/eval` checks them
against the script's published scores on the real SQuAD v1.1 dev set.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official script)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _f1_one(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _em_one(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def golds_list(golds: str | Iterable[str]) -> list[str]:
    out = [golds] if isinstance(golds, str) else list(golds)
    if not out:
        raise ValueError("no gold answers given; every question needs at least one answer")
    return out


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer, else 0.0."""
    return max(_em_one(prediction, g) for g in golds_list(golds))


def token_f1(prediction: str, golds: str | Iterable[str]) -> float:
    """Token-overlap F1 (0-1) against the best-matching gold answer."""
    return max(_f1_one(prediction, g) for g in golds_list(golds))
