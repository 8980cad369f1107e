"""synthesize() on a real index with a scripted generator: outputs, counted drops, resume, atomic writes."""

from __future__ import annotations

import json
import re

import pytest
from synth_helpers import ScriptedGenerator, good_question, is_read_back

from ragtune.errors import RagtuneError
from ragtune.records import load_qa
from synth import OUTPUT_FILES, PROGRESS_FILE, REPORT_FILE, SynthConfig, synthesize

GEN_ID = {"model": "scripted"}


def run(index, out, gen, **kw):
    kw.setdefault("writer", "auto")  # the scripted generator writes; the default (template) needs none
    return synthesize(
        SynthConfig(index=str(index), out_dir=str(out), **kw),
        generator=gen,
        generator_id=GEN_ID,
        progress=False,
    )


def read_splits(out) -> dict[str, list[dict]]:
    return {
        name: [json.loads(line) for line in (out / name).read_text().splitlines()] for name in OUTPUT_FILES
    }


def test_pairs_are_kept_split_by_document_and_loadable(synth_index, tmp_path):
    r = run(synth_index, tmp_path, ScriptedGenerator(), validation_fraction=0.2, test_fraction=0.2)
    assert (r.chunks, r.generated, r.kept) == (10, 20, 20)
    assert sum(r.dropped.values()) == 0
    splits = read_splits(tmp_path)
    docs = {name: {row["doc_ids"][0] for row in rows} for name, rows in splits.items()}
    assert [len(d) for d in docs.values()] == [6, 2, 2]
    assert not (
        docs["train.jsonl"] & docs["validation.jsonl"]
        or docs["train.jsonl"] & docs["test.jsonl"]
        or docs["validation.jsonl"] & docs["test.jsonl"]
    )
    for name in OUTPUT_FILES:  # ragtune's QA loader (tune generator/retriever, eval) reads every file
        for ex in load_qa(tmp_path / name):
            assert ex.context and ex.answer in ex.context and ex.doc_ids
    rows = splits["train.jsonl"]
    assert {(r["metadata"]["span_type"], r["metadata"]["writer"]) for r in rows} == {
        ("year", "generator"),
        ("number", "generator"),
    }
    year = next(r for r in rows if r["metadata"]["span_type"] == "year")
    assert year["question"].startswith("In what year was") and year["answer"] in year["metadata"]["sentence"]
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert report["kept"] == 20 and report["generator"] == GEN_ID and report["settings"]["api_key"] is None
    assert report["writers"]["generator"]["kept"] == 20 and report["writers"]["template"]["kept"] == 0


def scripted_drops(sentence, answer):
    """The year's question of six people fails one check each; the rest are good."""
    name = re.split(r" (?:was|works)", sentence)[0]
    if answer == "three":
        return (
            "How many bees are kept?"
            if name in ("Cato Lind", "Dara Fenn")
            else good_question(sentence, answer)
        )
    return {
        "Mara Quill": "I cannot write questions.",  # not a question
        "Tomas Reed": "In what year was the Eiffel Tower completed?",  # a worked example
        "Ilse Varn": "What is the capital of France?",  # not about its sentence
        "Bren Oakes": "Was Bren Oakes born in 1701?",  # the answer in the question
        "Edda Moss": "What did Edda Moss do in the town?",  # does not ask for its answer: read back
    }.get(name, good_question(sentence, answer))


REFUSED = {"not_a_question": 1, "copies_example": 1, "off_sentence": 1, "answer_in_question": 1}
LATER = {"reader_disagrees": 1, "near_duplicate": 1}  # Edda Moss's year; Dara Fenn's bees (Cato Lind's kept)


def nonzero(d):
    return {k: v for k, v in d.items() if v}


@pytest.mark.parametrize("writer", ["generator", "auto", "template"])
def test_every_drop_is_counted_by_reason_and_writer(synth_index, tmp_path, writer):
    gen = ScriptedGenerator(scripted_drops)
    r = run(synth_index, tmp_path, gen, writer=writer)
    assert r.generated == 20 and r.kept + sum(r.dropped.values()) == 20
    by_writer = {w: (c["kept"], nonzero(c["dropped"])) for w, c in r.writers.items()}
    if writer == "generator":  # every refused question is a dropped pair
        assert nonzero(r.dropped) == {**REFUSED, **LATER} and r.kept == 14
        assert by_writer == {"generator": (14, {**REFUSED, **LATER})}
    elif writer == "auto":  # the refused questions are written by the template instead, and kept
        assert nonzero(r.dropped) == LATER and r.kept == 18 and nonzero(r.replaced) == REFUSED
        assert by_writer == {"generator": (14, LATER), "template": (4, {})}
    else:  # no generator questions at all; the template's are read back and kept
        assert gen.prompts == 0 and gen.read_backs == 20 and r.kept == 20
        assert by_writer == {"template": (20, {})}
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert report["dropped"] == r.dropped and report["writers"] == r.writers
    kept_writers = {row["metadata"]["writer"] for rows in read_splits(tmp_path).values() for row in rows}
    assert kept_writers == ({"generator", "template"} if writer == "auto" else {writer})


def test_template_questions_without_read_back_need_no_model(synth_index, tmp_path):
    class NoModel:
        def generate(self, *a, **kw):
            raise AssertionError("the template writer without read-back runs no model")

    r = run(synth_index, tmp_path, NoModel(), writer="template", read_back=False)
    assert r.kept == 20 and r.new == 0
    questions = {row["question"] for rows in read_splits(tmp_path).values() for row in rows}
    assert "Mara Quill was born in Brightwater in what year?" in questions
    assert "Mara Quill works as a potter and keeps how many bees?" in questions


def test_kept_rows_record_the_read_back_answer(synth_index, tmp_path):
    run(synth_index, tmp_path, ScriptedGenerator())
    rows = read_splits(tmp_path)["train.jsonl"]
    assert rows and all(r["answer"] in r["metadata"]["read_back"] for r in rows)


@pytest.mark.parametrize("what", ["question", "read-back"])
def test_a_failing_prompt_is_a_counted_skip(synth_index, tmp_path, what):
    class Flaky(ScriptedGenerator):
        def generate(self, messages, **kw):
            if any(
                "Edda Moss" in m[-1]["content"] and is_read_back(m) == (what == "read-back") for m in messages
            ):
                raise RuntimeError("generation failed: prompt too long")
            return super().generate(messages, **kw)

    r = run(synth_index, tmp_path, Flaky(), writer="generator")
    assert r.dropped["generation_failed"] == 2 and r.kept == 18
    noun = "questions" if what == "question" else "read-backs"
    assert r.notes == [f"2 {noun} failed in this run, e.g.: generation failed: prompt too long"]


RESUME_CASES = [  # (interrupted after this many prompts, then questions and read-backs still to make)
    (8, 12, 20),  # in the generation: 8 questions saved, no read-back yet
    (24, 0, 16),  # in the read-back: all 20 questions and the first batch of 4 read-backs saved
]


@pytest.mark.parametrize(("cut_after", "pairs_left", "reads_left"), RESUME_CASES)
def test_resume_after_interruption_writes_what_an_uninterrupted_run_writes(
    synth_index, tmp_path, cut_after, pairs_left, reads_left
):
    kw = {"batch_size": 4}
    whole = run(synth_index, tmp_path / "whole", ScriptedGenerator(), **kw)
    with pytest.raises(KeyboardInterrupt):
        run(synth_index, tmp_path / "cut", ScriptedGenerator(fail_after=cut_after), **kw)
    assert not any((tmp_path / "cut" / name).exists() for name in OUTPUT_FILES)  # no half-written output
    progress = tmp_path / "cut" / PROGRESS_FILE
    assert len(progress.read_text().splitlines()) == 20 - pairs_left
    with progress.open("a") as f:
        f.write('{"key": "torn')  # a line cut short by the crash
    second = ScriptedGenerator()
    resumed = run(synth_index, tmp_path / "cut", second, **kw)
    assert (second.prompts, second.read_backs) == (pairs_left, reads_left)
    assert (resumed.new, resumed.read_backs_new, resumed.generated) == (pairs_left, reads_left, 20)
    assert read_splits(tmp_path / "cut") == read_splits(tmp_path / "whole")
    assert resumed.kept == whole.kept == 20
    third = ScriptedGenerator()  # all done: nothing is generated or read back again
    assert run(synth_index, tmp_path / "cut", third, **kw).new == 0
    assert third.prompts == third.read_backs == 0


@pytest.mark.parametrize("writer", ["auto", "template"])
def test_a_rerun_writes_identical_pairs(synth_index, tmp_path, writer):
    first = run(synth_index, tmp_path / "a", ScriptedGenerator(scripted_drops), writer=writer, batch_size=3)
    second = run(synth_index, tmp_path / "b", ScriptedGenerator(scripted_drops), writer=writer, batch_size=8)
    assert read_splits(tmp_path / "a") == read_splits(tmp_path / "b")
    assert (first.dropped, first.writers, first.replaced) == (second.dropped, second.writers, second.replaced)


def test_progress_is_keyed_by_the_generation_settings(synth_index, tmp_path):
    run(synth_index, tmp_path, ScriptedGenerator())
    same = ScriptedGenerator()
    run(synth_index, tmp_path, same, dedup_threshold=1.0, max_answer_words=3)  # a filter: re-checked only
    assert same.prompts == same.read_backs == 0
    run(synth_index, tmp_path, same, read_back=False)  # read-back is a filter too
    run(synth_index, tmp_path, same, writer="generator")  # auto and generator share the questions
    assert same.prompts == same.read_backs == 0
    more = ScriptedGenerator()
    run(synth_index, tmp_path, more, questions_per_chunk=3)  # a third span each: only those are new
    assert more.prompts == 10
    other = ScriptedGenerator()
    run(synth_index, tmp_path, other, seed=1)  # a generation setting: generated again
    assert other.prompts == 20
    fresh = ScriptedGenerator()
    run(synth_index, tmp_path, fresh, resume=False)
    assert fresh.prompts == fresh.read_backs == 20


def test_garbage_from_the_model_is_an_error_or_the_template_floor(synth_index, tmp_path):
    def garbage(sentence, answer):
        return "<|im_end|> lorem"

    with pytest.raises(RagtuneError, match=r"no pair passed the checks \(20 written .*not_a_question 20"):
        run(synth_index, tmp_path, ScriptedGenerator(garbage), writer="generator")
    assert not any((tmp_path / name).exists() for name in (*OUTPUT_FILES, REPORT_FILE))
    assert len((tmp_path / PROGRESS_FILE).read_text().splitlines()) == 20  # the replies are kept to look at
    floor = run(synth_index, tmp_path, ScriptedGenerator(garbage), writer="auto")
    assert floor.kept == 20 and floor.replaced["not_a_question"] == 20 and floor.new == 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"questions_per_chunk": 0}, "`questions_per_chunk` should be a positive integer"),
        ({"dedup_threshold": 0}, "`dedup_threshold` should be in"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, "leave documents for training"),
        ({"max_answer_words": 0}, "`max_answer_words` should be a positive integer"),
        ({"writer": "gpt"}, "`writer` should be auto, generator or template"),
    ],
)
def test_bad_settings_name_the_field(synth_index, tmp_path, kw, message):
    with pytest.raises(RagtuneError, match=message):
        run(synth_index, tmp_path, ScriptedGenerator(), **kw)


def test_empty_and_missing_index(empty_index, tmp_path):
    with pytest.raises(RagtuneError, match="holds no chunks; ingest documents first"):
        run(empty_index, tmp_path, ScriptedGenerator())
    with pytest.raises(RagtuneError, match="does not exist; build it with `ragtune ingest"):
        run(tmp_path / "nowhere", tmp_path, ScriptedGenerator())
    assert not any(tmp_path.iterdir())
