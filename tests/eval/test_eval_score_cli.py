"""`ragtune eval score`: predictions made elsewhere, scored without any model; bad input is refused."""

from __future__ import annotations

import json

import pytest
from cli_helpers import SHARED_DATA, needs_shared_data, run_cli

from eval.squad import squad_to_qa
from ragtune.records import write_jsonl


def _score(tmp_path, *args, **kw):
    """`ragtune eval score` of tmp_path's qa.jsonl and pred.jsonl."""
    return run_cli(
        "eval",
        "score",
        "--qa",
        str(tmp_path / "qa.jsonl"),
        "--predictions",
        str(tmp_path / "pred.jsonl"),
        *args,
        **kw,
    )


@needs_shared_data
def test_score_cli_equals_the_official_squad_script(tmp_path):
    data = json.loads((SHARED_DATA / "squad_v1.1" / "dev-v1.1.json").read_text())
    official = json.loads((SHARED_DATA / "squad_v1.1" / "official_script_scores.json").read_text())
    name = "rnet_plus_ensemble_msra.json"
    preds = json.loads((SHARED_DATA / "squad_v1.1" / "predictions" / name).read_text())
    write_jsonl(
        tmp_path / "qa.jsonl", [{k: v for k, v in r.items() if k != "context"} for r in squad_to_qa(data)]
    )
    write_jsonl(tmp_path / "pred.jsonl", [{"id": k, "prediction": v} for k, v in preds.items()])
    out = _score(tmp_path, "--json", "--bootstrap", "200")
    res = json.loads(out.stdout)
    assert res["n"] == 10570 and res["missing"] == 0
    assert res["exact_match"] == official[name]["exact_match"]
    assert res["f1"] == official[name]["f1"]


def test_score_small_file_with_passages_and_freshness(tmp_path):
    write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "id": "1",
                "question": "Where does Tomas live?",
                "answer": "Greenhollow",
                "doc_ids": ["people/tomas"],
                "stale_answer": "Ashford",
            },
            {
                "id": "2",
                "question": "Who founded Brightwater?",
                "answer": ["Mara Quill", "Quill"],
                "doc_ids": ["city"],
            },
        ],
    )
    write_jsonl(
        tmp_path / "pred.jsonl",
        [
            {
                "id": "1",
                "prediction": "Ashford",
                "passages": [
                    {"doc_id": "people/tomas", "score": 0.8, "text": "Tomas Reed lives in Ashford."}
                ],
            },
            {
                "id": "2",
                "prediction": "Quill",
                "passages": [
                    {"doc_id": "x", "score": 0.9, "text": "Quill founded it"},
                    {"doc_id": "city", "score": 0.5, "text": "Brightwater"},
                ],
            },
            {"id": "3", "prediction": "ignored"},
        ],
    )
    res = json.loads(_score(tmp_path, "--json").stdout)
    assert res["exact_match"] == 50.0 and res["unknown_ids"] == 1
    assert res["grounded"] == 100.0  # both answers occur in a passage they were given
    assert res["recall@1"] == 0.5 and res["mrr@10"] == 0.75
    assert res["freshness"]["stale"] == 1 and res["freshness"]["new"] == 0


@pytest.mark.parametrize(
    "qa_line, pred_line, message",
    [
        (
            {"id": "1", "question": "Q?"},
            {"id": "1", "prediction": "x"},
            "`answer` must be a string or a list",
        ),
        ({"id": "1", "question": "Q?", "answer": ""}, {"id": "1", "prediction": "x"}, "`answer` is empty"),
        ({"id": "1", "question": "Q?", "answer": "a"}, {"id": "1"}, "needs `id` and a string `prediction`"),
    ],
)
def test_score_bad_input_is_a_clear_error(tmp_path, qa_line, pred_line, message):
    write_jsonl(tmp_path / "qa.jsonl", [qa_line])
    write_jsonl(tmp_path / "pred.jsonl", [pred_line])
    proc = _score(tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
