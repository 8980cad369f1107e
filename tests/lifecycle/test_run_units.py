"""The lifecycle's pieces on their own: the budget plan, the step records, winner.json and `serve --from`
on a folder that is no finished run."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from lifecycle.budget import Plan, epochs_for, make_plan
from lifecycle.steps import StepStore
from ragtune.errors import RagtuneError
from ragtune.winner import Winner, read_winner, write_winner

PLANS = [  # budget min, chunks -> chunks asked, spans per chunk, training examples, test questions, cut
    (30, 60, 60, 4, 217, 194, False),
    (30, 900, 621, 1, 217, 194, True),
    (10, 40, 40, 4, 67, 52, True),  # the forgetting check gets 42 of the 50 general questions
]


@pytest.mark.parametrize(("minutes", "chunks", "asked", "per_chunk", "examples", "tests", "cut"), PLANS)
def test_the_budget_sizes_each_part(minutes, chunks, asked, per_chunk, examples, tests, cut):
    plan = make_plan(minutes, chunks, ["base", "rag", "raft+rag"], trains=True)
    got = (plan.max_chunks, plan.questions_per_chunk, plan.max_train_examples, plan.max_test_questions)
    assert got == (asked, per_chunk, examples, tests)
    assert bool(plan.cuts) == cut


def test_the_users_questions_take_their_share_of_the_evaluation_first():
    systems = ["base", "rag", "raft+rag"]
    assert make_plan(30, 60, systems, trains=True, n_user=100).max_test_questions == 194 - 100
    assert make_plan(30, 60, systems, trains=True, n_user=400).max_test_questions == 20  # the floor


@pytest.mark.parametrize(
    ("systems", "general", "tests"),
    [
        (["base", "rag"], 0, 369),  # nothing fine-tuned: no forgetting to measure
        (["base", "rag", "raft+rag"], 50, 194),  # the base and raft answer 50 general questions each
        (["base", "ft", "rag", "raft+rag"], 50, 164),  # base, ft and raft: 67.5 s of the evaluation share
    ],
)
def test_every_fine_tune_gets_its_forgetting_check_out_of_the_evaluation_share(systems, general, tests):
    plan = make_plan(30, 60, systems, trains=True)
    assert (plan.general_questions, plan.max_test_questions) == (general, tests)
    small = make_plan(3.5, 60, ["ft", "raft+rag"], trains=True)
    assert small.general_questions == 0 and "forgetting not measured" in " ".join(small.cuts)


def test_a_budget_with_no_room_for_training_is_refused_only_when_training_is_asked():
    with pytest.raises(RagtuneError, match="leaves no time for training"):
        make_plan(2.5, 50, ["rag", "raft+rag"], trains=True)
    assert make_plan(2.5, 50, ["base", "rag"], trains=False).max_chunks >= 1


def test_epochs_shrink_to_the_plan_and_say_so():
    plan = Plan(
        600, max_chunks=10, chunks=10, questions_per_chunk=1, max_train_examples=120, max_test_questions=20
    )
    assert epochs_for(plan, 30, 3.0) == (3.0, None)
    epochs, note = epochs_for(plan, 100, 3.0)
    assert epochs == 1.2 and "120 examples" in note


def test_a_step_is_skipped_only_with_the_same_key_and_its_outputs(tmp_path):
    lines, calls = [], []
    out = tmp_path / "made"

    def make():
        calls.append(1)
        out.write_text("x")
        return {"n": len(calls)}

    store = StepStore(tmp_path, lines.append, 3)
    assert store.run("a", "make", {"k": 1}, make, [out]) == {"n": 1}
    again = StepStore(tmp_path, lines.append, 3)
    assert again.run("a", "make", {"k": 1}, make, [out]) == {"n": 1} and again.ran == []
    assert StepStore(tmp_path, lines.append, 3).run("a", "make", {"k": 2}, make, [out]) == {"n": 2}
    out.unlink()
    assert StepStore(tmp_path, lines.append, 3).run("a", "make", {"k": 2}, make, [out]) == {"n": 3}
    assert sum("unchanged, skipped" in s for s in lines) == 1


def test_an_interrupted_step_has_no_record(tmp_path):
    store = StepStore(tmp_path, print, 1)
    store.run("a", "a", {"k": 1}, lambda: 1)

    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StepStore(tmp_path, print, 1).run("a", "a", {"k": 2}, boom)
    assert "a" not in json.loads((tmp_path / "steps.json").read_text())


def test_winner_round_trips_and_names_missing_parts(tmp_path):
    (tmp_path / "models" / "raft").mkdir(parents=True)
    w = Winner(run="r", system="raft+rag", model="models/raft", index="index", retrieval=True, top_k=3)
    write_winner(tmp_path, w)
    with pytest.raises(RagtuneError, match="names index index, which is not in"):
        read_winner(tmp_path)
    (tmp_path / "index").mkdir()
    assert read_winner(tmp_path) == w


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "holds no winner.json"), ("{", "is not valid JSON"), ('{"format": "x"}', "has format 'x'")],
)
def test_serve_from_a_folder_that_is_no_finished_run_is_one_clear_error(tmp_path, content, words):
    if content is not None:
        (tmp_path / "winner.json").write_text(content)
    proc = run_cli("serve", "--from", str(tmp_path), "--port", "0", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --from" if content is None else "error: ")
    assert words in proc.stderr


def test_serve_from_refuses_flags_it_sets(tmp_path):
    proc = run_cli("serve", "--from", str(tmp_path), "--top-k", "5", check=False)
    assert proc.returncode == 2 and "sets --top-k from the run's winner" in proc.stderr
