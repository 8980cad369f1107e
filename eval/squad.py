"""SQuAD v1.1 exact match and token F1, exactly as the official `evaluate-v1.1.py` computes them.

Hand-written on purpose: the official script is a 90-line file that no maintained PyPI package ships
unchanged (HF `evaluate` fetches it from the Hub at run time, which this project cannot do), and the
issue asks for numbers *equal* to it. The functions below are the script's own, line for line
(normalisation: lower case, drop punctuation, drop the articles a/an/the, collapse whitespace; F1 on
whitespace tokens with a multiset overlap; max over the gold answers). `tests/eval` checks the result
against the script's published scores on the real SQuAD v1.1 dev set.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping

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


def _golds(golds: str | Iterable[str]) -> list[str]:
    out = [golds] if isinstance(golds, str) else list(golds)
    if not out:
        raise ValueError("no gold answers given; every question needs at least one answer")
    return out


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer, else 0.0."""
    return max(_em_one(prediction, g) for g in _golds(golds))


def token_f1(prediction: str, golds: str | Iterable[str]) -> float:
    """Token-overlap F1 (0-1) against the best-matching gold answer."""
    return max(_f1_one(prediction, g) for g in _golds(golds))


def squad_scores(dataset: Mapping | list, predictions: Mapping[str, str]) -> dict[str, float]:
    """The official script's `evaluate(dataset, predictions)`: EM and F1 in percent.

    `dataset` is the `data` list of a SQuAD v1.1 JSON file (or the whole file's dict). Questions
    without a prediction count as 0, as in the script (which prints a message for each).
    """
    articles = dataset["data"] if isinstance(dataset, Mapping) else dataset
    f1 = em = total = 0.0
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                em += exact_match(pred, golds)
                f1 += token_f1(pred, golds)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}


def squad_to_qa(dataset: Mapping) -> list[dict]:
    """SQuAD v1.1 JSON → ragtune QA rows (`id`, `question`, `answer` list, `context`)."""
    rows = []
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "answer": [a["text"] for a in qa["answers"]],
                        "context": paragraph["context"],
                    }
                )
    return rows
