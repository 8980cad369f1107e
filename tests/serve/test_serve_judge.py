"""`ragtune eval --judge`: a real ragtune server as the judge (over HTTP, retrieval off, its RAG prompt
skipped), and the same model folder as an in-process judge; the prompt and every raw verdict land in
results.json."""

from __future__ import annotations

import json

import pytest
from serve_helpers import API_KEY

from eval import SystemSpec, run_comparison, write_report
from eval.judge import SYSTEM, TEMPLATE, Judge, judge_messages, parse_verdict
from ragtune.records import write_jsonl

QA = [
    {"id": "q1", "question": "What is the capital of Avalon?", "answer": "Brightwater"},
    {"id": "q2", "question": "Who founded Brightwater?", "answer": ["Mara Quill", "Quill"]},
    {"id": "q3", "question": "How many cats does Tomas Reed own?", "answer": "three"},
]


@pytest.mark.parametrize(
    "raw,want",
    [("yes", 1.0), ("Yes.", 1.0), ("**No**", 0.0), (" no, it is not", 0.0), ("maybe", None), ("", None)],
)
def test_parse_verdict(raw, want):
    assert parse_verdict(raw) == want


def test_judge_messages_hold_question_gold_and_reply():
    msgs = judge_messages("Who?", ["Mara Quill", "Quill"], "It was Mara.")
    assert msgs[0] == {"role": "system", "content": SYSTEM}
    assert msgs[1]["content"] == TEMPLATE.format(
        question="Who?", gold="Mara Quill / Quill", prediction="It was Mara."
    )


def _run(chatty_generator, qa, out, judge):
    systems = [SystemSpec("base", model=str(chatty_generator), max_tokens=6)]
    return run_comparison(
        qa, systems, out_dir=out, n_resamples=50, progress=False, metric="judge", judge=judge
    )


def test_a_ragtune_server_as_judge(server, chatty_generator, tmp_path):
    qa = tmp_path / "qa.jsonl"
    write_jsonl(qa, QA)
    http = Judge(server.url, api_key=API_KEY, cache_dir=tmp_path / "out")
    try:
        assert http._impl.extra == {"retrieval": False, "raw_prompt": True}  # a ragtune server: no RAG prompt
        res = _run(chatty_generator, qa, tmp_path / "out", http)
    finally:
        http.close()
    rows = res["splits"]["test"]["per_question"]["base"]
    assert all(r["prediction"] and isinstance(r["judge_raw"], str) for r in rows)  # each reply was graded
    assert all(r["judge"] == (parse_verdict(r["judge_raw"]) or 0.0) for r in rows)
    local = Judge(str(chatty_generator))  # the same model in-process: the same verdicts, word for word
    try:
        again = _run(chatty_generator, qa, tmp_path / "local", local)
    finally:
        local.close()
    assert [r["judge_raw"] for r in again["splits"]["test"]["per_question"]["base"]] == [
        r["judge_raw"] for r in rows
    ]

    paths = write_report(res, tmp_path / "report")
    body = json.loads(paths["json"].read_text())
    j = body["splits"]["test"]["judge"]
    assert j["system"] == SYSTEM and j["template"] == TEMPLATE and j["per_system"]["base"]["asked"] == 3
    assert [r["judge_raw"] for r in body["splits"]["test"]["per_question"]["base"]] == [
        r["judge_raw"] for r in rows
    ]
    assert body["config"]["metric"] == "judge" and body["verdict"]["metric"] == "judge"
    assert "judge" in body["splits"]["test"]["systems"]["base"]["metrics"]
    md = paths["md"].read_text()
    assert "Verdict metric: a judge model's yes/no" in md and "Judge: http://127.0.0.1:" in md

    cached = Judge(server.url, api_key=API_KEY, cache_dir=tmp_path / "out")  # a rerun asks nothing again
    try:
        assert _run(chatty_generator, qa, tmp_path / "out", cached)["splits"]["test"]["judge"]["per_system"][
            "base"
        ] == {"asked": 0, "cached": 3, "unparsed": j["per_system"]["base"]["unparsed"]}
    finally:
        cached.close()
