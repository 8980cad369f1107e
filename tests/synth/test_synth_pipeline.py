"""synthesize() on a real index with a scripted generator: outputs, counted drops, resume, atomic writes."""

from __future__ import annotations

import json

import pytest
from synth_helpers import ScriptedGenerator, good_reply, is_read_back

from ragtune.errors import RagtuneError
from ragtune.records import load_qa
from synth import OUTPUT_FILES, PROGRESS_FILE, REPORT_FILE, SynthConfig, synthesize

GEN_ID = {"model": "scripted"}


def run(index, out, gen, **kw):
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
    r = run(
        synth_index,
        tmp_path,
        ScriptedGenerator(),
        questions_per_chunk=2,
        validation_fraction=0.2,
        test_fraction=0.2,
    )
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
    row = splits["train.jsonl"][0]
    assert row["question"].startswith("In which town was") and row["answer"] == row["context"].split()[5]
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert report["kept"] == 20 and report["generator"] == GEN_ID and report["settings"]["api_key"] is None


def scripted_drops(passage, seed, temperature):
    """One pair per drop reason; the rest good."""
    name = passage.split(" was born")[0]
    return {
        "Mara Quill": "I cannot write questions.",  # unparsable
        "Tomas Reed": "Q: In which town was Tomas Reed born? A: London",  # not in the chunk
        "Ilse Varn": "Q: Was Ilse Varn born in Selby? A: Selby",  # answer in the question
        "Bren Oakes": "Q: What does Bren Oakes keep? A: Bren Oakes works as a weaver and keeps three bees",
        "Cato Lind": "Q: How many bees are kept? A: three",
        "Dara Fenn": "Q: How many bees are kept? A: three",  # a near duplicate of Cato Lind's
        "Edda Moss": "Q: Which year does Edda Moss like best? A: 1623",  # does not ask for its answer
    }.get(name, good_reply(passage))


DROP_CASES = [  # (read_back, the drops beyond one per per-pair check, kept)
    (True, {"reader_disagrees": 1, "near_duplicate": 1}, 4),
    (False, {"reader_disagrees": 0, "near_duplicate": 1}, 5),  # the year pair is kept
]


@pytest.mark.parametrize(("read_back", "more", "kept"), DROP_CASES)
def test_every_drop_is_counted_by_its_reason(synth_index, tmp_path, read_back, more, kept):
    gen = ScriptedGenerator(scripted_drops)
    r = run(synth_index, tmp_path, gen, read_back=read_back)
    assert r.dropped == {
        "generation_failed": 0,
        "unparsable": 1,
        "answer_not_in_chunk": 1,
        "answer_too_long": 1,
        "answer_in_question": 1,
        **more,
    }
    assert r.kept == kept and r.generated == r.kept + sum(r.dropped.values())
    assert (r.read_backs, gen.read_backs) == ((6, 6) if read_back else (0, 0))  # each checked pair once
    years = [row for rows in read_splits(tmp_path).values() for row in rows if row["answer"] == "1623"]
    assert len(years) == (not read_back)
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert report["dropped"]["reader_disagrees"] == more["reader_disagrees"]
    assert report["settings"]["read_back"] is read_back


def test_kept_rows_record_the_read_back_answer(synth_index, tmp_path):
    run(synth_index, tmp_path, ScriptedGenerator())
    rows = read_splits(tmp_path)["train.jsonl"]
    assert rows and all(r["metadata"]["read_back"] == f"{r['answer']}." for r in rows)


@pytest.mark.parametrize("what", ["pair", "read-back"])
def test_a_failing_prompt_is_a_counted_skip(synth_index, tmp_path, what):
    class Flaky(ScriptedGenerator):
        def generate(self, messages, **kw):
            if any(
                "Edda Moss" in m[-1]["content"] and is_read_back(m) == (what == "read-back") for m in messages
            ):
                raise RuntimeError("generation failed: prompt too long")
            return super().generate(messages, **kw)

    r = run(synth_index, tmp_path, Flaky())
    assert r.dropped["generation_failed"] == 1 and r.kept == 9
    noun = "generations" if what == "pair" else "read-backs"
    assert r.notes == [f"1 {noun} failed in this run, e.g.: generation failed: prompt too long"]


RESUME_CASES = [  # (interrupted after this many prompts, then pairs and read-backs still to make)
    (8, 12, 20),  # in the generation: 8 pairs saved, no read-back yet
    (24, 0, 16),  # in the read-back: all 20 pairs and the first batch of 4 read-backs saved
]


@pytest.mark.parametrize(("cut_after", "pairs_left", "reads_left"), RESUME_CASES)
def test_resume_after_interruption_writes_what_an_uninterrupted_run_writes(
    synth_index, tmp_path, cut_after, pairs_left, reads_left
):
    kw = {"questions_per_chunk": 2, "batch_size": 4}
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


def test_progress_is_keyed_by_the_generation_settings(synth_index, tmp_path):
    run(synth_index, tmp_path, ScriptedGenerator())
    same = ScriptedGenerator()
    run(synth_index, tmp_path, same, dedup_threshold=1.0, max_answer_words=3)  # a filter: re-checked only
    assert same.prompts == same.read_backs == 0
    run(synth_index, tmp_path, same, read_back=False)  # read-back is a filter too
    assert same.prompts == same.read_backs == 0
    other = ScriptedGenerator()
    run(synth_index, tmp_path, other, seed=1)  # a generation setting: generated again
    assert other.prompts == 10
    fresh = ScriptedGenerator()
    run(synth_index, tmp_path, fresh, resume=False)
    assert fresh.prompts == fresh.read_backs == 10


def test_later_pairs_ask_about_one_sentence_each_in_a_seeded_order(synth_index, tmp_path):
    seen: list[str] = []
    gen = ScriptedGenerator(lambda p, seed, t: seen.append(p) or good_reply(p, int("Ask about" in p)))
    r = run(synth_index, tmp_path, gen, max_chunks=4, questions_per_chunk=3, seed=5)
    assert (
        r.chunks == 4 and len(seen) == 12 and r.kept == 8
    )  # the third pair repeats the second: near duplicate
    assert sum("Ask about this sentence" not in p for p in seen) == 4  # the first pair: the whole chunk
    focus = sorted(p.split("Ask about this sentence: ")[1] for p in seen if "Ask about" in p)
    assert len(set(focus)) == 8  # both sentences of each chunk, each once
    assert run(synth_index, tmp_path / "again", ScriptedGenerator(), max_chunks=4, seed=5).chunks == 4
    assert [r["doc_ids"] for r in read_splits(tmp_path / "again")["train.jsonl"]] == [
        r["doc_ids"] for r in read_splits(tmp_path)["train.jsonl"] if r["metadata"]["pair"] == 0
    ]


def test_garbage_from_the_model_is_an_error_and_writes_nothing(synth_index, tmp_path):
    with pytest.raises(
        RagtuneError, match=r"no generated pair passed the checks \(10 generated .*unparsable 10"
    ):
        run(synth_index, tmp_path, ScriptedGenerator(lambda p, s, t: "<|im_end|> lorem"))
    assert not any((tmp_path / name).exists() for name in (*OUTPUT_FILES, REPORT_FILE))
    assert len((tmp_path / PROGRESS_FILE).read_text().splitlines()) == 10  # the replies are kept to look at


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"questions_per_chunk": 0}, "`questions_per_chunk` should be a positive integer"),
        ({"dedup_threshold": 0}, "`dedup_threshold` should be in"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, "leave documents for training"),
        ({"max_answer_words": 0}, "`max_answer_words` should be a positive integer"),
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
