"""`ragtune run` end to end on a small real corpus with tiny real models: killed and resumed, rerun with
nothing to do, refreshed after a document changes, and its winner served by `ragtune serve --from`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli
from lifecycle_helpers import write_corpus

pytestmark = pytest.mark.timeout(1200)

SYSTEMS = "base,fewshot+rag,rag,raft+rag"
USER_QA = [
    {"question": "Who founded Brightwater?", "answer": "Mara Quill"},
    {"question": "Which river flows past Korrin?", "answer": "Tove"},
    {"question": "What does Aldmouth trade?", "answer": "wool"},
    {"question": "What is Vessa's fair about?", "answer": "copper"},
]


def _args(root: Path, generator: Path) -> list[str]:
    return [
        "run", str(root / "docs"), "--out", str(root / "run"), "--base", str(generator),
        "--synth-generator", str(generator), "--no-read-back", "--budget-minutes", "8", "--systems", SYSTEMS,
        "--qa", str(root / "mine.jsonl"), "--no-progress", "--top-k", "1",
    ]  # fmt: skip


def _steps(run: Path) -> dict:
    p = run / "steps.json"
    return json.loads(p.read_text()) if p.is_file() else {}


@pytest.fixture(scope="module")
def run_root(module_tmp, run_generator) -> dict:
    """A run killed with SIGKILL once its questions are written, then resumed to the end."""
    root = module_tmp("lifecycle")
    write_corpus(root / "docs")
    (root / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in USER_QA))
    args = _args(root, run_generator)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragtune", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 600
    while "synth" not in _steps(root / "run") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_steps = set(_steps(root / "run"))
    resumed = run_cli(*args)
    return {"root": root, "args": args, "killed_steps": killed_steps, "resumed": resumed.stdout}


def test_a_killed_run_resumes_without_redoing_finished_steps(run_root):
    run = run_root["root"] / "run"
    assert run_root["killed_steps"] >= {"ingest", "synth"}
    out = run_root["resumed"]
    assert "ingest the documents (refresh: only changed ones are embedded): unchanged, skipped" in out
    assert "write and check question-answer pairs from the chunks: unchanged, skipped" in out
    assert "fine-tune the generator RAFT-style (LoRA) and export: done" in out
    assert "[6/9] fine-tune the generator closed-book (LoRA) and export: not asked (no ft system" in out
    winner = json.loads((run / "winner.json").read_text())
    assert winner["system"] in SYSTEMS.split(",")
    assert winner["won_on"]["split"] == "user" and winner["won_on"]["n"] == len(USER_QA)
    assert "same_winner_on_synthetic_test" in winner["won_on"]
    assert f"serve it: ragtune serve --from {run}" in out
    report = (run / "report" / "report.md").read_text()
    # the report holds no machine path: the run folder is named relative to the report (eval/report_paths.py)
    assert "## This run" in report and "ragtune serve --from .." in report
    results = json.loads((run / "report" / "results.json").read_text())
    assert set(results["splits"]) == {"test", "user"}
    assert set(results["splits"]["user"]["systems"]) == set(SYSTEMS.split(","))
    # the fine-tune (raft) has its forgetting measured against the base on general questions, in the
    # verdict's cost line of every system that runs it
    assert [f["name"] for f in results["forgetting"]] == ["raft"]
    assert (
        results["forgetting"][0]["general_qa"]["n"]
        == json.loads((run / "summary.json").read_text())["plan"]["general_questions"]
    )
    assert "measure each fine-tune's forgetting on general questions: done" in out
    assert "| measure | base | raft | raft − base [95% CI] |" in report
    raft_line = next(line for line in report.splitlines() if line.startswith("- raft+rag: "))
    assert "vs its base on general QA" in raft_line
    qa = json.loads((run / "qa" / "synth_report.json").read_text())
    assert qa["kept"] > 0 and all(qa["splits"][s]["pairs"] > 0 for s in ("train", "validation", "test"))


def test_a_rerun_with_the_same_inputs_redoes_nothing(run_root):
    run = run_root["root"] / "run"
    before = (run / "winner.json").read_text()
    out = run_cli(*run_root["args"]).stdout
    assert out.count(": unchanged, skipped") == len(_steps(run)) >= 4, out
    assert json.loads((run / "summary.json").read_text())["steps_run"] == []
    assert (run / "winner.json").read_text() == before


def test_serve_from_answers_with_the_winner(run_root):
    from openai import OpenAI

    from serve import start_server

    run = run_root["root"] / "run"
    winner = json.loads((run / "winner.json").read_text())
    name = f"{winner['run']}:{winner['system']}"
    server = start_server(None, None, extra_args=["--from", str(run)])
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
        card = client.models.list().data[0]
        assert card.id == name
        assert card.model_extra["ragtune_system"] == {"run": winner["run"], "system": winner["system"]}
        r = client.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": "Who founded Brightwater?"}],
            max_tokens=8,
            seed=0,
        )
        assert r.model_extra["ragtune_system"]["system"] == winner["system"]
        assert bool(r.model_extra["sources"]) == winner["retrieval"]
    finally:
        server.stop()


def test_a_changed_document_is_re_embedded_alone(run_root):
    root, run = run_root["root"], run_root["root"] / "run"
    doc = root / "docs" / "brightwater.md"
    doc.write_text(doc.read_text().replace("grey stone", "red brick"))
    out = run_cli(*run_root["args"]).stdout
    steps = _steps(run)
    assert steps["ingest"]["result"]["changed"] == 1 and steps["ingest"]["result"]["unchanged"] == 9
    assert "ingest the documents (refresh: only changed ones are embedded): done" in out
    assert (run / "winner.json").is_file()
