"""The report's verdict (eval/verdict.py) on small hand-made results dicts: no model, no generation."""

from __future__ import annotations

import json

import pytest

from eval.report import _blocks, _render_md, write_report
from eval.report_tables import comparison_table
from eval.verdict import comparison, compute_verdict


def _ci(mean, half=10.0):
    return {"mean": mean, "low": max(mean - half, 0.0), "high": min(mean + half, 100.0), "n": 20}


def _system(name, em, f1=None, *, retrieval=False, sha=None, model_id=None, cost=None, fresh=None):
    s = {
        "spec": {
            "name": name,
            "model": None,
            "url": "http://x",
            "retrieval": retrieval,
            "top_k": 2,
            "fewshot": 0,
            "fewshot_seed": 0,
            "index_version": None,
            "retriever": None,
        },
        "describe": {"mode": "http", "model_id": model_id or name, **({"model_sha256": sha} if sha else {})},
        "n": 20,
        "cached": 0,
        "generated": 20,
        "missing": 0,
        "metrics": {"exact_match": _ci(em), "f1": _ci(em if f1 is None else f1)},
        "cost": {"latency_p50_s": 0.5, "latency_p95_s": 0.9, **(cost or {})},
    }
    if fresh:
        s["freshness"] = {
            "new": fresh[0],
            "stale": fresh[1],
            "both": 0,
            "neither": 20 - sum(fresh),
            "n": 20,
            "new_rate": _ci(5.0 * fresh[0]),
            "stale_rate": _ci(5.0 * fresh[1]),
        }
    return s


def _cmp(a, b, metric, diff, low, high):
    return {
        "a": a,
        "b": b,
        "metric": metric,
        "diff": diff,
        "low": low,
        "high": high,
        "n": 20,
        "p_le_0": 0.5,
        "significant": bool(low > 0 or high < 0),
    }


def _split(systems, comparisons):
    return {
        "qa": {"n": 20},
        "systems": {n: s for n, s in systems},
        "comparisons": comparisons,
        "disagreements": [],
        "per_question": {},
    }


def _results(test, **extra):
    return {
        "ragtune_eval": 1,
        "config": {"seed": 0, "n_resamples": 100, "batch_size": 4, "ci": 0.95, "metric": "exact_match"},
        "splits": {"test": test, **extra.pop("splits", {})},
        **extra,
    }


# base 10, ft 20, rag 40 EM; every difference stored in listing order (a − b).
CLEAR = _split(
    [
        ("base", _system("base", 10)),
        ("ft", _system("ft", 20, sha="f" * 64)),
        ("rag", _system("rag", 40, retrieval=True)),
    ],
    [
        _cmp("base", "ft", "exact_match", -10, -20, -1),
        _cmp("base", "rag", "exact_match", -30, -40, -20),
        _cmp("ft", "rag", "exact_match", -20, -30, -10),
        _cmp("ft", "rag", "f1", -20, -30, -10),
    ],
)
CLOSE = _split(
    [("base", _system("base", 10)), ("rag", _system("rag", 40, retrieval=True)), ("ft", _system("ft", 35))],
    [
        _cmp("base", "rag", "exact_match", -30, -40, -20),
        _cmp("base", "ft", "exact_match", -25, -35, -15),
        _cmp("rag", "ft", "exact_match", 5, -5, 15),
    ],
)
EM_TIE = _split(
    [
        ("base", _system("base", 10, 12)),
        ("rag", _system("rag", 40, 60, retrieval=True)),
        ("ft", _system("ft", 40, 50)),
    ],
    [
        _cmp("base", "rag", "exact_match", -30, -40, -20),
        _cmp("base", "ft", "exact_match", -30, -40, -20),
        _cmp("rag", "ft", "exact_match", 0.0, -10, 10),
        _cmp("rag", "ft", "f1", 10, 2, 18),
        _cmp("base", "rag", "f1", -48, -60, -30),
    ],
)


# The SQuAD shape (docs/benchmarks.md): rag and fewshot+rag say the answer in a sentence, raft+rag says it
# alone. EM cannot tell the three apart (CIs include zero); raft+rag beats the EM-best on F1, CI clear of 0.
def _ci_tie(raft_f1_low, rag_em=17):
    return _split(
        [
            ("base", _system("base", 2, 5)),
            ("rag", _system("rag", rag_em, 11, retrieval=True)),
            ("fsrag", _system("fsrag", 17.5, 12, retrieval=True)),
            ("raft", _system("raft", 16, 24, retrieval=True)),
        ],
        [
            _cmp("base", "fsrag", "exact_match", -15.5, -22, -9),
            _cmp("rag", "fsrag", "exact_match", rag_em - 17.5, -3, 2),
            _cmp("raft", "fsrag", "exact_match", -1.5, -8, 6),
            _cmp("raft", "rag", "exact_match", -1.0, -8, 6),
            _cmp("raft", "fsrag", "f1", 12.0, raft_f1_low, 19.5),
            _cmp("raft", "rag", "f1", 13.0, 6.1, 20.2),
            _cmp("rag", "fsrag", "f1", -1.0, -4, 2),
            _cmp("raft", "base", "f1", 19.0, 12, 26),
            _cmp("base", "fsrag", "f1", -7.0, -10, -4),
        ],
    )


# The SciFact shape (`ragtune run` on 50 abstracts): raft is the best on EM, but EM cannot tell it from rag
# or fsrag; raft beats both on F1 (fsrag with a CI clear of zero or not, by `fsrag_low`).
def _best_on_both(fsrag_low):
    return _split(
        [
            ("base", _system("base", 7, 3)),
            ("rag", _system("rag", 33, 6, retrieval=True)),
            ("fsrag", _system("fsrag", 37, 7, retrieval=True)),
            ("raft", _system("raft", 44, 40, retrieval=True)),
        ],
        [
            _cmp("raft", "fsrag", "exact_match", 7.4, -14.8, 33.3),
            _cmp("raft", "rag", "exact_match", 11.1, -7.4, 29.6),
            _cmp("raft", "base", "exact_match", 37.0, 18.5, 59.3),
            _cmp("fsrag", "rag", "exact_match", 3.7, -7.4, 14.8),
            _cmp("raft", "fsrag", "f1", 33.5, fsrag_low, 51.0),
            _cmp("raft", "rag", "f1", 33.7, 16.9, 52.0),
            _cmp("raft", "base", "f1", 37.5, 20.1, 55.0),
        ],
    )


BEST_ON_BOTH = _best_on_both(16.0)
BEST_ON_BOTH_BUT_ONE = _best_on_both(-2.0)
CI_TIE_F1_SEPARATES = _ci_tie(5.2)
CI_TIE_F1_DOES_NOT = _ci_tie(-0.5)
EXACT_AND_CI_TIE = _ci_tie(5.2, rag_em=17.5)  # rag and fsrag equal on EM (F1 picks fsrag), raft on F1


@pytest.mark.parametrize(
    "split, best, runner, metric, distinguishable, says, not_says",
    [
        (
            CLEAR,
            "rag",
            "ft",
            "exact_match",
            True,
            [
                "deploy rag: EM 40.0 [30.0, 50.0]",
                "beats runner-up ft by +20.0 EM points [+10.0, +30.0]",
                "also beats base",
                "vs base +30.0 EM points [+20.0, +40.0]",
            ],
            ["not distinguishable"],
        ),
        (
            CLOSE,
            "rag",
            "ft",
            "exact_match",
            False,
            [
                "not distinguishable from ft (+5.0 EM points [-5.0, +15.0]: the CI includes zero)",
                "beats base",
                "Choose on cost",
            ],
            ["beats runner-up"],
        ),
        (
            EM_TIE,
            "rag",
            "ft",
            "f1",
            True,
            [
                "EM ties with ft; compared on F1",
                "F1 60.0",
                "beats runner-up ft by +10.0 F1 points [+2.0, +18.0]",
            ],
            [],
        ),
        (
            CI_TIE_F1_SEPARATES,
            "raft",
            "fsrag",
            "f1",
            True,
            [
                "deploy raft: F1 24.0",
                "EM cannot tell fsrag, the best on EM, from rag or raft: the CIs include zero; F1 can",
                "beats runner-up fsrag by +12.0 F1 points [+5.2, +19.5]",
                "also beats rag, base",
            ],
            ["Choose on cost"],
        ),
        (
            EXACT_AND_CI_TIE,
            "raft",
            "fsrag",
            "f1",
            True,
            ["EM cannot tell fsrag, the best on EM, from rag or raft", "by +12.0 F1 points [+5.2, +19.5]"],
            ["ties with"],
        ),
        (
            CI_TIE_F1_DOES_NOT,
            "fsrag",
            "rag",
            "exact_match",
            False,
            ["deploy fsrag: EM 17.5", "not distinguishable from rag", "nor from raft", "Choose on cost"],
            ["F1 decides", "cannot tell"],
        ),
        (
            BEST_ON_BOTH,
            "raft",
            "fsrag",
            "f1",
            True,
            [
                "deploy raft: F1 40.0",
                "EM cannot tell raft, the best on EM, from fsrag or rag: the CIs include zero; F1 can",
                "beats runner-up fsrag by +33.5 F1 points [+16.0, +51.0]",
                "also beats rag, base",
            ],
            ["Choose on cost"],
        ),
        (
            BEST_ON_BOTH_BUT_ONE,
            "raft",
            "fsrag",
            "exact_match",
            False,
            ["deploy raft: EM 44.0", "not distinguishable from fsrag", "nor from rag", "Choose on cost"],
            ["F1 decides", "cannot tell"],
        ),
    ],
)
def test_split_verdict(split, best, runner, metric, distinguishable, says, not_says):
    v = compute_verdict(_results(split))
    s = v["splits"]["test"]
    assert (s["best"], s["runner_up"], s["metric"], s["distinguishable"]) == (
        best,
        runner,
        metric,
        distinguishable,
    )
    assert v["metric"] == "exact_match" and "Verdict metric: exact match" in v["metric_text"]
    for text in says:
        assert text in s["text"], (text, s["text"])
    for text in not_says:
        assert text not in s["text"], (text, s["text"])
    assert json.loads(json.dumps(v)) == v  # JSON-ready as is


def test_ci_of_a_pair_stored_the_other_way_round_is_turned_around_not_recomputed():
    c = comparison(CLEAR, "rag", "ft", "exact_match")
    assert (c["a"], c["b"], c["diff"], c["low"], c["high"], c["significant"]) == (
        "rag",
        "ft",
        20,
        10,
        30,
        True,
    )
    assert comparison(CLEAR, "rag", "ft", "rouge_l") is None


@pytest.mark.parametrize(
    "split, tied_on, not_separated",
    [
        (EM_TIE, ["exact_match"], []),
        (CI_TIE_F1_SEPARATES, ["exact_match"], ["rag", "raft"]),
        (BEST_ON_BOTH, ["exact_match"], ["fsrag", "rag"]),
    ],
)
def test_tie_on_em_is_named_in_the_metric_line(split, tied_on, not_separated):
    v = compute_verdict(_results(split))
    assert "F1 decides (test)" in v["metric_text"]
    assert v["splits"]["test"]["tied_on"] == tied_on
    assert v["splits"]["test"]["not_separated"] == not_separated


def test_no_tie_no_split_named_in_the_metric_line():
    v = compute_verdict(_results(CI_TIE_F1_DOES_NOT))
    assert v["metric_text"].endswith("F1 decides (no split here).")


FRESH = _split(
    [
        ("base", _system("base", 0, fresh=(0, 2))),
        ("rag", _system("rag", 60, retrieval=True, fresh=(12, 1))),
        ("ft", _system("ft", 5, fresh=(1, 9))),
    ],
    [
        _cmp("base", "rag", "exact_match", -60, -75, -45),
        _cmp("base", "ft", "exact_match", -5, -15, 0),
        _cmp("rag", "ft", "exact_match", 55, 40, 70),
    ],
)


@pytest.mark.parametrize("with_fresh", [True, False])
def test_freshness_split_present_or_absent(with_fresh):
    res = _results(CLEAR, splits={"freshness": FRESH} if with_fresh else {})
    v = compute_verdict(res)
    assert list(v["splits"]) == (["test", "freshness"] if with_fresh else ["test"])
    blocks = _render_md([b for b in _blocks(res, v=v) if b[0] != "img"], "charts")
    head = blocks.split("## Method")[0]
    assert "For held-out questions (test, n=20) deploy rag" in head
    if with_fresh:
        f = v["splits"]["freshness"]
        assert f["best"] == "rag" and f["distinguishable"] and f["freshness"]["new"] == 12
        assert (
            "For changed facts after the index refresh (freshness, n=20) deploy rag: EM 60.0 [50.0, 70.0]; "
            "beats runner-up ft by +55.0 EM points [+40.0, +70.0]"
        ) in head
        assert "It answers 12 of 20 changed facts with the new value, 1 with the stale one." in head
    else:
        assert "changed facts" not in head


FORGET = {
    "general_qa": {"n": 30},
    "ft_model": "/m/ft",
    "base_model": "/m/base",
    "ft_sha256": "f" * 64,
    "base_sha256": "b" * 64,
    "base": {"perplexity": 9.0, "exact_match": 20.0, "f1": 30.0, "contained": 50.0},
    "ft": {"perplexity": 7.0, "exact_match": 22.0, "f1": 27.0, "contained": 40.0},
    "delta": {},
    "forgetting": {
        "f1_points": 3.0,
        "low": -1.0,
        "high": 7.0,
        "n": 30,
        "contained_points": 10.0,
        "contained_low": 4.0,
        "contained_high": 16.0,
    },
    "gate": {"max_forgetting": 5.0, "passed": True},
}


@pytest.mark.parametrize("forget", [FORGET, None])
def test_cost_lines_with_and_without_forgetting(forget):
    split = json.loads(json.dumps(CLEAR))
    split["systems"]["ft"]["cost"].update(train_time_s=42.0, adapter_bytes=3_500_000)
    v = compute_verdict(_results(split, **({"forgetting": forget} if forget else {})))
    lines = {c["system"]: c["text"] for c in v["costs"]}
    assert lines["ft"].startswith("ft: latency p50 500 ms; training 42 s; adapter 3.50 MB")
    assert lines["rag"] == "rag: latency p50 500 ms; training time not recorded; no adapter recorded" + (
        "; forgetting not measured" if forget else ""
    )
    if forget:
        assert lines["ft"].endswith(
            "forgets 3.0 F1 points [-1.0, +7.0] and 10.0 answer-contained points "
            "[+4.0, +16.0] vs its base on general QA (n=30), gate --max-forgetting 5.0: passed"
        )
        assert v["forgetting"][0]["ft"]["f1"] == 27.0 and "forgetting_text" not in v
        assert lines["base"].endswith("runs the base model (the forgetting reference)")  # served as /m/base
    else:
        assert v["forgetting"] is None and not any("forget" in t for t in lines.values())


def test_forgetting_matched_over_http_by_served_name_or_stated_apart():
    split = json.loads(json.dumps(CLEAR))
    del split["systems"]["ft"]["describe"]["model_sha256"]
    split["systems"]["base"]["describe"]["model_id"] = "base"
    v = compute_verdict(_results(split, forgetting=FORGET))  # ragtune serve names a model after its folder
    roles = {c["system"]: c["forgetting_role"] for c in v["costs"]}
    assert roles == {"base": "base", "ft": "tuned", "rag": "unmeasured"}
    split["systems"]["ft"]["describe"]["model_id"] = "other"
    v = compute_verdict(_results(split, forgetting=FORGET))
    assert v["forgetting_text"].startswith("Forgetting of ft: forgets 3.0 F1 points")


def test_every_tuned_model_gets_its_own_forgetting_the_winner_included(tmp_path):
    """Two fine-tunes measured against one base (eval.forget.forgetting_of's list): each system gets the
    measurement of the model it runs, in its cost line, the table at a glance, the report and its chart."""
    split = json.loads(json.dumps(CLEAR))
    split["systems"]["raft+rag"] = _system("raft+rag", 60, retrieval=True, sha="r" * 64)
    split["systems"]["ft+rag"] = _system("ft+rag", 30, retrieval=True, sha="f" * 64)
    raft = json.loads(json.dumps(FORGET))
    raft.update(name="raft", ft_model="/m/raft", ft_sha256="r" * 64)
    raft["forgetting"].update(f1_points=1.0, low=-2.0, high=4.0)
    ft = {**json.loads(json.dumps(FORGET)), "name": "ft"}
    for f in (ft, raft):
        f["delta"] = {k: {"diff": -1.0, "low": -2.0, "high": 0.5, "n": 30} for k in f["base"]}
    results = _results(split, forgetting=[ft, raft])
    v = compute_verdict(results)
    lines = {c["system"]: c["text"] for c in v["costs"]}
    assert "forgets 1.0 F1 points [-2.0, +4.0]" in lines["raft+rag"]
    assert "forgets 3.0 F1 points [-1.0, +7.0]" in lines["ft"] and "forgets 3.0 F1 points" in lines["ft+rag"]
    assert lines["rag"].endswith("forgetting not measured")
    cells = {r[0]: r[-1] for r in v["table"]["rows"]}
    # the cell gives the answer-contained points lost (what a loss of knowledge moves; F1 moves with format)
    assert cells["raft+rag"] == "10.0 contained pts [+4.0, +16.0]" and cells["base"] == "base model"
    assert [f["name"] for f in v["forgetting"]] == ["ft", "raft"] and "forgetting_text" not in v
    files = write_report(results, tmp_path)
    md = files["md"].read_text()
    assert "| measure | base | ft | ft − base [95% CI] | raft | raft − base [95% CI] |" in md
    assert (tmp_path / "charts" / "forgetting.png").is_file()


def test_pairwise_table_keeps_pairs_with_the_best_or_base(tmp_path):
    pairs = (
        ("base", "fewshot"),
        ("base", "ft"),
        ("base", "rag"),
        ("fewshot", "ft"),
        ("fewshot", "rag"),
        ("ft", "rag"),
    )
    split = _split(
        [
            (n, _system(n, em, retrieval=n == "rag"))
            for n, em in (("base", 10), ("fewshot", 12), ("ft", 20), ("rag", 40))
        ],
        [_cmp(a, b, m, -1, -2, 0) for a, b in pairs for m in ("exact_match", "f1", "rouge_l")],
    )
    assert {r[0] for r in comparison_table(split, ["rag", "base"])[1]} == {
        "base − fewshot",
        "base − ft",
        "base − rag",
        "fewshot − rag",
        "ft − rag",
    }
    assert len(comparison_table(split)[1]) == 12  # without `keep`: every pair on EM and F1
    paths = write_report(_results(split), tmp_path)
    md = paths["md"].read_text()
    assert md.startswith(
        "# ragtune evaluation report\n\n## Verdict\n\n| system | EM [95% CI] | contains % | latency p50 |"
    )
    assert "\n\nFor held-out questions (test, n=20) deploy rag" in md
    assert "| fewshot − ft |" not in md and "| ft − rag | EM |" in md and "| base − fewshot | F1 |" in md
    assert md.index("## Verdict") < md.index("## test (n=20)") < md.index("### Differences")
    body = json.loads(paths["json"].read_text())
    assert body["verdict"]["splits"]["test"]["best"] == "rag"
    assert len(body["splits"]["test"]["comparisons"]) == 18  # the full list stays in results.json
    assert (
        "<h2>Verdict</h2>" in paths["html"].read_text()
        and "<ul><li>base: latency" in paths["html"].read_text()
    )
