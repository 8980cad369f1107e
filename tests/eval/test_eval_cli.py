"""`ragtune eval` end to end through the real command line: YAML systems, freshness, the forgetting gate."""

from __future__ import annotations

import json

from cli_helpers import run_cli
from eval_toy import toy  # noqa: F401 - the fixture

from eval.forget import gate


def test_eval_cli_with_systems_yaml(tiny_generator, toy, tmp_path):
    (tmp_path / "systems.yaml").write_text(
        "# ragtune eval --qa qa.jsonl --systems-file systems.yaml --out out\n"
        f"index: {toy['index']}\n"
        "max_tokens: 6\n"
        "systems:\n"
        f"  - {{name: base, model: {tiny_generator}}}\n"
        f"  - {{name: rag, model: {tiny_generator}, retrieval: true, top_k: 2}}\n"
    )
    out = tmp_path / "out"
    proc = run_cli(
        "eval",
        "--qa",
        str(toy["qa"]),
        "--systems-file",
        str(tmp_path / "systems.yaml"),
        "--out",
        str(out),
        "--bootstrap",
        "100",
    )
    assert (
        "report:" in proc.stdout and (out / "report.html").is_file() and (out / "disagreements.md").is_file()
    )
    res = json.loads((out / "results.json").read_text())
    systems = res["splits"]["test"]["systems"]
    assert set(systems) == {"base", "rag"} and systems["rag"]["spec"]["top_k"] == 2
    assert systems["rag"]["spec"]["max_tokens"] == 6  # top-level YAML defaults apply to every system
    assert [c["metric"] for c in res["splits"]["test"]["comparisons"]][:2] == ["exact_match", "f1"]
    assert res["config"]["metric"] == "contains" == res["verdict"]["metric"]  # the default
    assert "verdict metric: contains" in proc.stdout


def test_eval_cli_metric_em_and_judge_without_a_judge(tiny_generator, toy, tmp_path):
    out = tmp_path / "out"
    args = ["eval", "--qa", str(toy["qa"]), "--systems", "base", "--base", str(tiny_generator)]
    args += ["--max-tokens", "4", "--bootstrap", "50", "--out", str(out)]
    run_cli(*args, "--metric", "em")
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["metric"] == "exact_match" == res["verdict"]["metric"]
    assert "Verdict metric: exact match" in (out / "report.md").read_text()
    proc = run_cli(*args, "--metric", "judge", check=False)
    assert proc.returncode != 0 and "--metric judge needs --judge URL|FOLDER" in proc.stderr


def test_eval_cli_freshness_and_forgetting_gate(tiny_generator, toy, tmp_path):
    out = tmp_path / "out"
    args = [
        "eval",
        "--qa",
        str(toy["qa"]),
        "--systems",
        "base,ft",
        "--base",
        str(tiny_generator),
        "--ft",
        str(tiny_generator),
        "--freshness-qa",
        str(toy["fresh_qa"]),
        "--general-qa",
        str(toy["qa"]),
        "--max-tokens",
        "6",
        "--bootstrap",
        "100",
        "--out",
        str(out),
    ]
    proc = run_cli(*args, "--max-forgetting", "-1", check=False)
    assert proc.returncode == 1 and "FAIL" in proc.stdout  # ft == base forgets 0 points > -1: the gate fails
    res = json.loads((out / "results.json").read_text())
    [f] = res["forgetting"]  # one measurement per fine-tuned model, named by its system
    assert f["name"] == "ft" and f["forgetting"]["f1_points"] == 0.0 and f["gate"]["passed"] is False
    assert f["delta"]["perplexity"]["diff"] == 0.0
    assert set(res["splits"]) == {"test", "freshness"}
    assert res["splits"]["freshness"]["systems"]["ft"]["freshness"]["n"] == 1
    assert "Forgetting" in (out / "report.md").read_text()
    assert gate(f, 0.5)[0] and gate(f, None)[0]
