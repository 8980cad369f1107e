"""SQuAD v1.1 scoring of a dataset (the official `evaluate-v1.1.py`'s `evaluate`) and its QA rows.

The per-answer measures (normalisation, exact match, token F1) live in `ragtune/squad_metric.py`, shared
with synth's read-back check; they are re-exported here. `tests/eval` checks the result against the
script's published scores on the real SQuAD v1.1 dev set.
"""

from __future__ import annotations

from collections.abc import Mapping

from ragtune.squad_metric import exact_match, normalize_answer, token_f1
from ragtune.squad_metric import golds_list as _golds

__all__ = ["_golds", "exact_match", "normalize_answer", "squad_scores", "squad_to_qa", "token_f1"]


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
