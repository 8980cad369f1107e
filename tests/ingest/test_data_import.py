"""`ragtune data import {squad,beir,pubmedqa}`: tiny files in each real layout, the real datasets where present,
bad and foreign files through the real CLI, determinism and the atomic write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import SHARED_DATA, run_cli

from ingest.datasets import OUTPUT_FILES, SPLITS, import_dataset
from ragtune.errors import RagtuneError
from ragtune.records import iter_jsonl, load_qa


def _squad(root: Path, version: str = "1.1") -> Path:
    data = []
    for a in "ABCD":
        paragraphs = [
            {
                "context": f"Article {a} paragraph {p} says the answer is {a}{p}.",
                "qas": [
                    {
                        "id": f"{a}{p}q{i}",
                        "question": f"What does {a} paragraph {p} say ({i})?",
                        "answers": [{"text": f"{a}{p}", "answer_start": 0}] * 3,
                    }
                    for i in range(2)
                ],
            }
            for p in range(2)
        ]
        data.append({"title": f"Article_{a}", "paragraphs": paragraphs})
    if version == "v2.0":
        data[0]["paragraphs"][0]["qas"].append(
            {
                "id": "nope",
                "question": "Unanswerable?",
                "answers": [],
                "plausible_answers": [{"text": "x", "answer_start": 0}],
                "is_impossible": True,
            }
        )
    path = root / "dev.json"
    path.write_text(json.dumps({"version": version, "data": data}), encoding="utf-8")
    return path


def _beir(root: Path) -> Path:
    d = root / "beir"
    (d / "qrels").mkdir(parents=True)
    docs = [
        {"_id": f"d{i}", "title": f"Title {i}", "text": f"Abstract {i}.", "metadata": {}} for i in range(6)
    ]
    (d / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs), encoding="utf-8")
    queries = [{"_id": str(q), "text": f"Claim {q}.", "metadata": {}} for q in range(5)]
    (d / "queries.jsonl").write_text("".join(json.dumps(x) + "\n" for x in queries), encoding="utf-8")
    qrels = {
        "train": ["0\td0\t1", "1\td1\t1", "1\td2\t1"],
        "dev": ["2\td3\t1"],
        "test": ["3\td4\t1", "4\td5\t0"],
    }
    for split, rows in qrels.items():  # BEIR's header line and the CRLF endings of the real files
        (d / "qrels" / f"{split}.tsv").write_bytes(
            ("query-id\tcorpus-id\tscore\r\n" + "\r\n".join(rows)).encode()
        )
    return d


def _pubmedqa(root: Path) -> Path:
    d = root / "pqal"
    d.mkdir()
    entries = {
        str(100 + i): {
            "QUESTION": f"Does drug {i} work?",
            "CONTEXTS": [f"Background {i}.", f"Results {i}."],
            "LABELS": ["BACKGROUND", "RESULTS"],
            "MESHES": ["Humans"],
            "YEAR": "2011",
            "reasoning_required_pred": "yes",
            "reasoning_free_pred": "yes",
            "final_decision": ["yes", "no", "maybe"][i % 3],
            "LONG_ANSWER": f"Drug {i} is fine.",
        }
        for i in range(8)
    }
    (d / "ori_pqal.json").write_text(json.dumps(entries, indent=4), encoding="utf-8")
    (d / "test_ground_truth.json").write_text(json.dumps({"100": "yes", "101": "no"}), encoding="utf-8")
    return d


# format, writer, extra options, documents, questions per split (train, validation, test)
CASES = [
    ("squad", _squad, ["--validation-fraction", "0.25"], 8, (4, 4, 8)),
    ("beir", _beir, [], 6, (2, 1, 1)),
    ("pubmedqa", _pubmedqa, ["--validation-fraction", "0.2"], 8, (5, 1, 2)),
]


def _outputs(out: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    docs = [obj for _, obj in iter_jsonl(out / "documents.jsonl")]
    return docs, {s: [obj for _, obj in iter_jsonl(out / f"{s}.jsonl")] for s in SPLITS}


def _assert_disjoint(splits: dict[str, list[dict]]) -> None:
    """No gold document of a test question is the source of a train or validation question."""
    seen = {d for s in ("train", "validation") for r in splits[s] for d in r["doc_ids"]}
    assert not seen & {d for r in splits["test"] for d in r["doc_ids"]}


@pytest.mark.parametrize("fmt, make, opts, n_docs, counts", CASES, ids=[c[0] for c in CASES])
def test_import_tiny(tmp_path, fmt, make, opts, n_docs, counts):
    source, out = make(tmp_path), tmp_path / "out"
    proc = run_cli("data", "import", fmt, str(source), "--out", str(out), *opts)
    assert f"{n_docs} documents" in proc.stdout
    for split, n in zip(SPLITS, counts):
        assert f"{split}.jsonl" in proc.stdout and f" {n} questions" in proc.stdout
    docs, splits = _outputs(out)
    assert len(docs) == n_docs and all(d["id"] and d["text"] for d in docs)
    assert tuple(len(splits[s]) for s in SPLITS) == counts
    doc_ids = {d["id"] for d in docs}
    for s in SPLITS:  # every split is one the QA loader accepts, its gold ids documents
        assert all(set(ex.doc_ids) <= doc_ids for ex in load_qa(out / f"{s}.jsonl"))
    _assert_disjoint(splits)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # no temporary files left
    # same seed, same bytes; the Python entry point writes what the CLI wrote
    again = tmp_path / "again"
    report = import_dataset(fmt, source, again, **_options(opts))
    assert report.questions == dict(zip(SPLITS, counts))
    for name in OUTPUT_FILES:
        assert (again / name).read_bytes() == (out / name).read_bytes()


def _options(opts: list[str]) -> dict[str, float]:
    return {opts[i].lstrip("-").replace("-", "_"): float(opts[i + 1]) for i in range(0, len(opts), 2)}


def test_squad_split_by_article_seeded_and_v2_unanswerable_skipped(tmp_path):
    source = _squad(tmp_path, "v2.0")
    articles = {}
    for seed in range(6):
        import_dataset("squad", source, tmp_path / str(seed), validation_fraction=0.25, seed=seed)
        _, splits = _outputs(tmp_path / str(seed))
        assert "nope" not in {r["id"] for s in SPLITS for r in splits[s]}
        by_split = {s: {r["metadata"]["article"] for r in splits[s]} for s in SPLITS}
        assert [len(by_split[s]) for s in SPLITS] == [1, 1, 2]
        articles[seed] = by_split["test"]
    assert len({frozenset(v) for v in articles.values()}) > 1  # the seed moves articles between splits


def test_pubmedqa_official_test_ids_and_long_answer(tmp_path):
    out = tmp_path / "out"
    import_dataset("pubmedqa", _pubmedqa(tmp_path), out)
    _, splits = _outputs(out)
    assert {r["id"] for r in splits["test"]} == {"100", "101"}
    assert splits["test"][0]["answer"] == "yes" and splits["test"][0]["metadata"]["long_answer"]


def test_beir_answer_is_gold_titles_and_zero_scores_are_not_gold(tmp_path):
    out = tmp_path / "out"
    report = import_dataset("beir", _beir(tmp_path), out)
    _, splits = _outputs(out)
    assert splits["train"][1] == {
        "id": "1",
        "question": "Claim 1.",
        "answer": ["Title 1", "Title 2"],
        "doc_ids": ["d1", "d2"],
    }
    assert [r["id"] for r in splits["test"]] == ["3"]  # query 4 has only a score-0 judgement
    assert any("score > 0" in n for n in report.notes)


def test_failed_write_leaves_previous_outputs(tmp_path, monkeypatch):
    from ingest.datasets import common

    source, out = _squad(tmp_path), tmp_path / "out"
    import_dataset("squad", source, out)
    before = {n: (out / n).read_bytes() for n in OUTPUT_FILES}
    real, calls = common.write_jsonl, []

    def crash_on_third(path, rows):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, rows)

    monkeypatch.setattr(common, "write_jsonl", crash_on_third)
    with pytest.raises(OSError):
        import_dataset("squad", source, out, seed=1)
    assert {n: (out / n).read_bytes() for n in OUTPUT_FILES} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)


def test_bad_fractions(tmp_path):
    with pytest.raises(RagtuneError, match="fraction"):
        import_dataset(
            "squad", _squad(tmp_path), tmp_path / "out", validation_fraction=0.5, test_fraction=0.5
        )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _squad_no_question(tmp_path):
    path = _squad(tmp_path)
    data = json.loads(path.read_text())
    del data["data"][1]["paragraphs"][0]["qas"][1]["question"]
    return _write(path, json.dumps(data))


def _beir_broken(tmp_path, name, text):
    d = _beir(tmp_path)
    _write(d / name, text)
    return d


def _pubmedqa_without(tmp_path, key):
    d = _pubmedqa(tmp_path)
    data = json.loads((d / "ori_pqal.json").read_text())
    del data["103"][key]
    _write(d / "ori_pqal.json", json.dumps(data, indent=4))
    return d


# format, bad source maker, what the one error line must name (file, then field or line)
BAD = [
    ("squad", lambda t: _write(t / "dev.json", '{"version": "1.1"}'), ["dev.json", "`data`"]),
    (
        "squad",
        lambda t: _write(t / "dev.json", '{"data": [\n  {"title": "A",\n   "paragraphs": [}\n'),
        ["dev.json:3:", "not valid JSON"],
    ),
    ("squad", _squad_no_question, ["dev.json", "data[1].paragraphs[0].qas[1]", "`question`"]),
    ("squad", lambda t: _beir(t) / "corpus.jsonl", ["corpus.jsonl:2:", "not valid JSON"]),  # a foreign file
    ("beir", lambda t: (_beir(t) / "corpus.jsonl").unlink() or t / "beir", ["corpus.jsonl", "missing"]),
    (
        "beir",
        lambda t: _beir_broken(t, "queries.jsonl", '{"_id": "0", "text": "a"}\n{"_id": 1, text}\n'),
        ["queries.jsonl:2", "not valid JSON"],
    ),
    (
        "beir",
        lambda t: _beir_broken(t, "queries.jsonl", '{"_id": "0", "title": "no text"}\n'),
        ["queries.jsonl:1", "`text`"],
    ),
    (
        "beir",
        lambda t: _beir_broken(t, "qrels/test.tsv", "query-id\tcorpus-id\tscore\n3\tnot-a-doc\t1\n"),
        ["test.tsv:2", "corpus-id", "not-a-doc"],
    ),
    (
        "beir",
        lambda t: _beir_broken(t, "qrels/test.tsv", "query-id\tcorpus-id\tscore\n3 d4 1\n"),
        ["test.tsv:2", "query-id<TAB>corpus-id<TAB>score"],
    ),
    ("pubmedqa", lambda t: _pubmedqa_without(t, "QUESTION"), ["ori_pqal.json", "103", "`QUESTION`"]),
    ("pubmedqa", lambda t: _pubmedqa_without(t, "final_decision"), ["ori_pqal.json", "`final_decision`"]),
    ("pubmedqa", lambda t: _write(t / "ids.json", '["1", "2"]'), ["ids.json", "expected a JSON object"]),
    (
        "pubmedqa",
        lambda t: _write(_pubmedqa(t) / "test_ground_truth.json", '{"999": "yes"}').parent,
        ["test_ground_truth.json", "999", "not in the dataset"],
    ),
]


@pytest.mark.parametrize("fmt, make, names", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_one_error_line(tmp_path, fmt, make, names):
    source = make(tmp_path)
    proc = run_cli("data", "import", fmt, str(source), "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


REAL = [
    ("squad", "squad_v1.1/dev-v1.1.json"),
    ("beir", "beir_scifact"),
    ("pubmedqa", "pubmedqa_pqal"),
]


@pytest.mark.parametrize(
    "fmt, rel",
    [
        pytest.param(
            *r,
            marks=pytest.mark.skipif(
                not (SHARED_DATA / r[1]).exists(), reason=f"public data not found at {SHARED_DATA / r[1]}"
            ),
        )
        for r in REAL
    ],
    ids=[r[0] for r in REAL],
)
def test_import_real_dataset(tmp_path, fmt, rel):
    out = tmp_path / "out"
    proc = run_cli("data", "import", fmt, str(SHARED_DATA / rel), "--out", str(out))
    docs, splits = _outputs(out)
    n = {s: len(splits[s]) for s in SPLITS}
    if fmt == "squad":
        assert len(docs) == 2067 and sum(n.values()) == 10570
        articles = [{r["metadata"]["article"] for r in splits[s]} for s in SPLITS]
        assert sum(map(len, articles)) == len(set().union(*articles)) == 48  # no article in two splits
        assert len(articles[2]) == 24  # the questions of half the articles are the test set
        _assert_disjoint(splits)
    elif fmt == "beir":
        assert len(docs) == 5183 and n == {"train": 809, "validation": 0, "test": 300}
        assert "181 gold documents of test questions are also gold" in proc.stdout  # BEIR's own splits share
        report = import_dataset(fmt, SHARED_DATA / rel, tmp_path / "disjoint", disjoint=True)
        assert report.questions == {"train": 537, "validation": 0, "test": 300}
        _assert_disjoint(_outputs(tmp_path / "disjoint")[1])
    else:
        assert len(docs) == 1000 and sum(n.values()) == 1000 and n["test"] == 500
        official = json.loads((SHARED_DATA / rel / "test_ground_truth.json").read_text())
        assert {r["id"]: r["answer"] for r in splits["test"]} == official
        _assert_disjoint(splits)
