"""From stored feedback to a tuned model: `ragtune feedback export` on a real SQLite file, then
`tune generator --objective dpo` (TRL's DPOTrainer, LoRA) on the pairs it wrote, resumed and exported."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from cli_helpers import run_cli
from tuner_world import PEOPLE

from ragtune.artifacts import read_artifact
from ragtune.feedback import AnswerRecord, open_feedback
from ragtune.prompt import build_messages
from tuner import export_model, train_generator
from tuner.gen_data import load_generator_data
from tuner.preference import load_preferences


def _answer(i: int, answer: str, n: int = 0) -> AnswerRecord:
    name, town, _ = PEOPLE[i]
    other = PEOPLE[(i + 1) % len(PEOPLE)]
    passages = [
        {
            "chunk_id": f"person{i}#0",
            "doc_id": f"person{i}",
            "title": name,
            "text": f"{name} lives in {town}.",
        },
        {
            "chunk_id": f"person{i + 1}#0",
            "doc_id": f"person{i + 1}",
            "title": other[0],
            "text": f"{other[0]}.",
        },
    ]
    q = f"Where does {name} live?"
    return AnswerRecord(
        id=f"chatcmpl-{i}-{n}",
        model="m",
        question=q,
        answer=answer,
        request_messages=[{"role": "user", "content": q}],
        prompt_messages=build_messages(q, [p["text"] for p in passages]),
        passages=passages,
        index_version="v0001",
    )


def fill(db) -> None:
    """Six people answered wrongly and corrected, plus every case the export drops or pairs otherwise."""
    store = open_feedback(db)
    for i in range(6):
        store.add_answer(_answer(i, "Nowhere"))
        store.add_feedback(f"chatcmpl-{i}-0", "down", PEOPLE[i][1])
    store.add_answer(_answer(6, "Selby"))  # down without a correction, paired with an up-rated answer
    store.add_feedback("chatcmpl-6-0", "down")
    store.add_answer(_answer(6, PEOPLE[6][1], n=1))
    store.add_feedback("chatcmpl-6-1", "up")
    store.add_answer(_answer(7, PEOPLE[7][1]))  # up, nothing to pair with
    store.add_feedback("chatcmpl-7-0", "up")
    store.add_answer(_answer(7, "Rook", n=1))  # rated down, then up: the last rating counts
    store.add_feedback("chatcmpl-7-1", "down")
    store.add_feedback("chatcmpl-7-1", "up")
    store.add_answer(_answer(5, "Ostry", n=1))  # the correction says what the answer said
    store.add_feedback("chatcmpl-5-1", "down", "ostry")
    store.close()


@pytest.fixture(scope="module")
def exported(module_tmp):
    d = module_tmp("feedback")
    fill(d / "fb.db")
    proc = run_cli("feedback", "export", "--db", str(d / "fb.db"), "--out", str(d / "data"))
    return d / "data", proc.stdout


def test_export_writes_corrections_pairs_and_what_it_dropped(exported):
    out, stdout = exported
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ratings"] == 12 and summary["down"] == 9 and summary["up"] == 3
    assert summary["sft"] == {"train": 7, "test": 0} and summary["preferences"] == {"train": 7, "test": 0}
    assert summary["dropped"] == {
        "a later rating of the same answer replaces it": 1,
        "correction equals the rejected answer": 1,
        "up-rated, no down-rated answer to the same question to pair with": 2,
    }
    assert "preferences.jsonl: 7 pairs" in stdout

    sft = load_generator_data(out / "sft.jsonl")  # the shared QA format the tuner reads
    first = json.loads((out / "sft.jsonl").read_text().splitlines()[0])
    assert sft[0].answer == PEOPLE[0][1] and first["doc_ids"] == ["person0"]  # gold: the passage holding it
    assert first["context"] == f"{PEOPLE[0][0]} lives in {PEOPLE[0][1]}." and len(first["passages"]) == 2

    pairs = load_preferences(str(out / "preferences.jsonl"))
    by_rejected = {p["rejected"][0]["content"]: p for p in pairs}
    assert by_rejected["Selby"]["chosen"][0]["content"] == PEOPLE[6][1]  # an up-rated answer as chosen
    assert pairs[0]["prompt"] == _answer(0, "").prompt_messages  # the prompt the model was given


def test_export_splits_by_document_and_refuses_a_missing_db(exported, tmp_path):
    run_cli("feedback", "export", "--db", str(tmp_path / "fb.db"), "--out", str(tmp_path / "x"), check=False)
    fill(tmp_path / "fb.db")
    run_cli(
        "feedback",
        "export",
        "--db",
        str(tmp_path / "fb.db"),
        "--out",
        str(tmp_path / "s"),
        "--test-fraction",
        "0.3",
    )
    rows = {
        name: [json.loads(line) for line in (tmp_path / "s" / name).read_text().splitlines()]
        for name in ("sft.jsonl", "preferences.jsonl", "sft_test.jsonl", "preferences_test.jsonl")
    }
    train_docs = {d for n in ("sft.jsonl", "preferences.jsonl") for r in rows[n] for d in r["doc_ids"]}
    test_docs = {
        d for n in ("sft_test.jsonl", "preferences_test.jsonl") for r in rows[n] for d in r["doc_ids"]
    }
    assert test_docs and train_docs and not train_docs & test_docs
    missing = run_cli(
        "feedback", "export", "--db", str(tmp_path / "no.db"), "--out", str(tmp_path / "y"), check=False
    )
    assert missing.returncode == 2 and "no.db does not exist" in missing.stderr


def test_dpo_on_the_tiny_model_through_the_cli_resumes_and_refuses_raft(exported, tiny_generator, tmp_path):
    out, _ = exported
    prefs = str(out / "preferences.jsonl")
    args = ["tune", "generator", "--base", str(tiny_generator), "--data", prefs, "--objective", "dpo"]
    args += ["--max-steps", "3", "--batch-size", "2", "--eval-steps", "1", "--val-fraction", "0.3", "--json"]
    run = run_cli(*args, "--out", str(tmp_path / "dpo"))
    result = json.loads(run.stdout)
    assert result["steps"] == 3 and result["n_train"] + result["n_val"] == 7 and result["n_val"] >= 1
    assert all(math.isfinite(h["loss"]) for h in result["train_losses"])
    art = read_artifact(tmp_path / "dpo")
    assert art["objective"] == "dpo" and art["config"]["objective"] == "dpo" and art["config"]["beta"] == 0.1

    shutil.rmtree(tmp_path / "dpo" / "checkpoints" / "checkpoint-3")  # as if killed after step 2
    again = json.loads(run_cli(*args, "--out", str(tmp_path / "dpo"), "--resume").stdout)
    assert again["resumed_from"].endswith("checkpoint-2") and again["steps"] == 3

    raft = run_cli(*args, "--out", str(tmp_path / "raft"), "--mode", "raft", "--index", str(out), check=False)
    assert raft.returncode == 2 and "objective dpo" in raft.stderr and "--mode raft" in raft.stderr
    sft_as_pairs = run_cli(
        "tune", "generator", "--base", str(tiny_generator), "--data", str(out / "sft.jsonl"),
        "--objective", "dpo", "--out", str(tmp_path / "bad"), check=False,
    )  # fmt: skip
    assert sft_as_pairs.returncode == 2 and "`prompt`" in sft_as_pairs.stderr


def test_dpo_round_trip_on_the_default_model(exported, tmp_path):
    """export -> DPO (LoRA, three steps) -> export on the real SmolLM2-135M-Instruct: the merged model loads,
    ragtune.json records the objective, and the chosen answers gained probability over the rejected ones."""
    out, _ = exported
    result = train_generator(
        "default",
        str(out / "preferences.jsonl"),
        str(tmp_path / "adapter"),
        objective="dpo",
        max_steps=3,
        batch_size=4,
        val_fraction=0,
        logging_steps=1,
        learning_rate=5e-4,
        max_length=256,
    )
    losses = [h["loss"] for h in result.train_losses]
    assert result.steps == 3 and math.isclose(losses[0], math.log(2), abs_tol=1e-3)  # starts as the base
    assert losses[-1] < losses[0]
    merged = export_model(str(tmp_path / "adapter"), str(tmp_path / "merged"))
    art = read_artifact(merged)
    assert art["objective"] == "dpo" and art["method"] == "lora"

    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(merged)).config.model_type == "llama"


def test_a_run_takes_the_corrections_as_extra_training_pairs(tmp_path, world):
    """`ragtune run --feedback-db`: the corrections join the run's pairs, each row once per epoch."""
    from lifecycle.training import feedback_tasks
    from tuner.gen_config import GeneratorConfig

    fill(tmp_path / "fb.db")
    said: list[str] = []
    tasks = feedback_tasks(world["qa"], tmp_path, "raft", str(tmp_path / "fb.db"), said.append)
    assert [t["weight"] for t in tasks] == [32, 7] and tasks[1]["data"].endswith("qa/feedback/sft.jsonl")
    assert "7 corrections" in said[0]
    assert feedback_tasks(world["qa"], tmp_path, "raft", None, said.append) == [
        {"data": str(world["qa"]), "mode": "raft"}
    ]
    cfg = GeneratorConfig.from_dict({"tasks": tasks, "mode": "raft", "index": str(tmp_path)})
    assert [t["weight"] for t in cfg.task_list()] == [32, 7]
