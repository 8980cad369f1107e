"""Metric values on hand-computed cases, the official SQuAD v1.1 script's cases, bootstrap CIs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import SHARED_DATA, needs_shared_data

from eval import (
    answer_contained,
    bootstrap_mean,
    doc_scores,
    exact_match,
    grounding,
    normalize_answer,
    paired_bootstrap,
    retrieval_metrics,
    rouge_l,
    squad_scores,
    token_f1,
)
from eval.answers import freshness_label


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Denver Broncos", "denver broncos"),  # article dropped, lower case
        ("  a   cat\tsat\n", "cat sat"),  # whitespace collapsed
        ("Santa Clara, California.", "santa clara california"),  # punctuation removed
        ("an apple and the pear", "apple and pear"),
        ("theatre", "theatre"),  # articles only as whole words
        ("$5.5-billion", "55billion"),
    ],
)
def test_normalize_answer_official_rules(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    "pred, golds, em, f1",
    [
        ("the Denver Broncos!", ["Denver Broncos"], 1.0, 1.0),
        ("Denver", ["Denver Broncos"], 0.0, 2 * 1 * 0.5 / 1.5),  # P=1, R=1/2
        ("Broncos of Denver", ["Denver Broncos"], 0.0, 2 * (2 / 3) * 1 / (2 / 3 + 1)),  # P=2/3, R=1
        ("cat", ["dog", "a cat", "the cat sat"], 1.0, 1.0),  # max over gold answers
        ("cat sat", ["dog", "the cat sat down"], 0.0, 2 * 1 * (2 / 3) / (1 + 2 / 3)),
        ("", ["Denver"], 0.0, 0.0),
        ("the", ["a"], 1.0, 0.0),  # both normalise to "" (official)
        ("a a b", ["a b b"], 0.0, 2 * 1 * 0.5 / 1.5),  # articles gone: "b" vs "b b"
    ],
)
def test_exact_match_and_f1(pred, golds, em, f1):
    assert exact_match(pred, golds) == em
    assert token_f1(pred, golds) == pytest.approx(f1)


def test_f1_counts_repeated_tokens_as_a_multiset():
    # pred "b b c", gold "b c c": common = {b:1, c:1} → P = R = 2/3
    assert token_f1("b b c", "b c c") == pytest.approx(2 / 3)


@needs_shared_data
def test_squad_scores_equal_the_official_script_on_the_real_dev_set():
    data = json.loads((SHARED_DATA / "squad_v1.1" / "dev-v1.1.json").read_text())
    official = json.loads((SHARED_DATA / "squad_v1.1" / "official_script_scores.json").read_text())
    for name in ("bert_ensemble_google.json", "logistic_regression_baseline_stanford.json"):
        preds = json.loads((SHARED_DATA / "squad_v1.1" / "predictions" / name).read_text())
        assert squad_scores(data, preds) == official[name]  # equal to the last bit


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("the cat sat on the mat", ["the cat sat"], 2 * 1 * 0.5 / 1.5),  # LCS 3, P=3/6, R=3/3
        ("cat", ["dog", "cat"], 1.0),
        ("", ["cat"], 0.0),
    ],
)
def test_rouge_l(pred, golds, expected):
    assert rouge_l(pred, golds) == pytest.approx(expected)


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("I think it is Brightwater, by the river.", ["brightwater"], 1.0),
        ("Brightwaters", ["Brightwater"], 0.0),  # token boundaries
        ("He owns three cats", ["3", "three"], 1.0),
        ("nothing", ["The"], 0.0),
    ],
)
def test_answer_contained(pred, golds, expected):
    assert answer_contained(pred, golds) == expected


def test_grounding():
    passages = [{"text": "Mara Quill founded Brightwater in 1203."}, {"text": "Tomas Reed is a baker."}]
    assert grounding("Mara Quill", passages) == {"supported": 1.0, "support": 1.0}
    assert grounding("Mara Reed", passages) == {"supported": 0.0, "support": 1.0}  # tokens from two places
    assert grounding("Anna Quill", passages) == {"supported": 0.0, "support": 0.5}
    assert grounding("Mara", None) is None


@pytest.mark.parametrize(
    "pred, label",
    [
        ("Greenhollow", "new"),
        ("It is Ashford.", "stale"),
        ("Greenhollow or Ashford", "both"),
        ("Paris", "neither"),
    ],
)
def test_freshness_label(pred, label):
    assert freshness_label(pred, ["Greenhollow"], ["Ashford"]) == label
    assert freshness_label(pred, ["Greenhollow"], []) is None


def test_retrieval_metrics_hand_computed():
    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d9": 1}}
    # chunks of d3 appear twice: BEIR keeps the document's best chunk score
    passages = [
        {"doc_id": "d3", "score": 0.9},
        {"doc_id": "d1", "score": 0.5},
        {"doc_id": "d3", "score": 0.4},
        {"doc_id": "d2", "score": 0.1},
    ]
    assert doc_scores(passages) == {"d3": 0.9, "d1": 0.5, "d2": 0.1}
    res = retrieval_metrics(qrels, {"q1": doc_scores(passages)}, ks=(1, 2, 10))
    q1 = res["q1"]
    assert q1["recall@1"] == 0.0 and q1["recall@2"] == 0.5 and q1["recall@10"] == 1.0
    assert q1["mrr@1"] == 0.0 and q1["mrr@10"] == 0.5
    idcg = 1 + 1 / np.log2(3)
    assert q1["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / idcg)
    assert q1["ndcg@2"] == pytest.approx((1 / np.log2(3)) / idcg)
    assert res["q2"] == {k: 0.0 for k in q1}  # a query without results scores 0


def test_passages_without_scores_rank_by_position():
    assert doc_scores([{"doc_id": "b"}, {"doc_id": "a"}, {"doc_id": "b"}]) == {"b": 3.0, "a": 2.0}


def test_paired_bootstrap_constant_difference_has_a_zero_width_ci():
    a = np.linspace(0, 1, 40)
    r = paired_bootstrap(a + 0.25, a, n_resamples=500, seed=3)
    assert (
        r["diff"] == pytest.approx(0.25)
        and r["low"] == pytest.approx(0.25)
        and r["high"] == pytest.approx(0.25)
    )
    assert r["n"] == 40


def test_bootstrap_ci_matches_the_normal_approximation_and_is_seeded():
    x = [1.0] * 100 + [0.0] * 100  # mean 0.5, standard error sqrt(.25/200) = 0.0354
    r = bootstrap_mean(x, n_resamples=4000, seed=0)
    assert r["mean"] == 0.5
    assert r["low"] == pytest.approx(0.5 - 1.96 * 0.0354, abs=0.01)
    assert r["high"] == pytest.approx(0.5 + 1.96 * 0.0354, abs=0.01)
    assert bootstrap_mean(x, n_resamples=4000, seed=0) == r
    p = paired_bootstrap(x, [0.0] * 200, n_resamples=4000, seed=0)
    assert (p["low"], p["high"]) == (r["low"], r["high"])  # paired vs all-zero = the one-sample CI
