"""The verdict's metric (issue 25): chosen per run, named in the text, the table at a glance, the note on
systems that know the answer but not its format."""

from __future__ import annotations

import copy

from test_eval_verdict import _ci, _cmp, _results, _split, _system

from eval.report import _blocks, _render_md
from eval.verdict import compute_verdict


def _with_contains(system, contains):
    system["metrics"]["contains"] = _ci(contains)
    return system


# rag answers in sentences: EM 0, contained 45; ft answers in the expected form: EM 30, contained 30.
CHATTY = _split(
    [
        ("base", _with_contains(_system("base", 0, 5), 5)),
        ("rag", _with_contains(_system("rag", 0, 12, retrieval=True), 45)),
        ("ft", _with_contains(_system("ft", 30, 31), 30)),
    ],
    [
        _cmp("base", "rag", "exact_match", 0.0, 0.0, 0.0),
        _cmp("base", "ft", "exact_match", -30, -45, -15),
        _cmp("rag", "ft", "exact_match", -30, -45, -15),
        _cmp("base", "rag", "contains", -40, -55, -25),
        _cmp("base", "ft", "contains", -25, -40, -10),
        _cmp("rag", "ft", "contains", 15, 2, 28),
    ],
)


def _chatty(metric=None):
    res = _results(CHATTY)
    if metric is None:
        del res["config"]["metric"]  # results that do not record one: the default decides
    else:
        res["config"]["metric"] = metric
    return res


def test_the_metric_decides_and_is_named():
    on_em = compute_verdict(_chatty("exact_match"))
    on_contains = compute_verdict(_chatty())  # the default
    assert on_em["metric"] == "exact_match" and on_em["splits"]["test"]["best"] == "ft"
    assert on_contains["metric"] == "contains" and on_contains["splits"]["test"]["best"] == "rag"
    t = on_contains["splits"]["test"]
    assert t["text"].startswith("For held-out questions (test, n=20) deploy rag: contains 45.0 [35.0, 55.0]")
    assert t["vs_runner_up"]["diff"] == 15 and t["distinguishable"] and t["runner_up"] == "ft"
    assert "Verdict metric: the gold answer contained in the reply" in on_contains["metric_text"]
    assert "list" in on_contains["metric_text"]  # the guard is stated
    # the argument wins over what the results record (what `ragtune run` passes)
    assert compute_verdict(_chatty("exact_match"), metric="contains")["splits"]["test"]["best"] == "rag"
    assert compute_verdict(_chatty(), metric="em")["splits"]["test"]["best"] == "ft"


def test_knows_the_answer_but_not_the_format():
    v = compute_verdict(_chatty("exact_match"))
    gaps = v["splits"]["test"]["format_gaps"]
    assert [g["system"] for g in gaps] == ["rag"]  # 45 contained vs 0 EM; ft's 30 vs 30 is no gap
    chatty = copy.deepcopy(_chatty("exact_match"))
    chatty["splits"]["test"]["systems"]["rag"]["spec"]["fewshot"] = 3  # few-shot already: only a fine-tune
    assert (
        "0.0%: it knows the answer but not the format; a fine-tune fixes that cheaply."
        in (compute_verdict(chatty)["splits"]["test"]["text"])
    )
    assert (
        "rag contains the answer in 45.0% of its replies but matches it exactly in 0.0%: it knows the answer "
        "but not the format; a fine-tune or a few-shot prompt fixes that cheaply."
        in v["splits"]["test"]["text"]
    )


def test_the_verdict_opens_with_one_table():
    v = compute_verdict(_chatty())
    md = _render_md(_blocks(_chatty(), v=v), "charts")
    head = md.split("## Verdict\n\n", 1)[1]
    assert head.startswith(
        "| system | contains [95% CI] | EM % | latency p50 | training | forgetting (vs base, general QA) |"
    )
    assert "| rag | 45.0 [35.0, 55.0] | 0.0 | 500 ms | – | – |" in head
    assert head.index("| rag |") < head.index("For held-out questions")


def test_a_metric_the_results_lack_falls_back_and_says_so():
    v = compute_verdict(_chatty(), metric="judge")  # no judge graded these replies
    assert v["metric"] == "contains" and v["splits"]["test"]["best"] == "rag"
    assert "the results hold no judge scores, so contains decides" in v["metric_text"]
