"""Retriever fine-tuning on a real MiniLM and a real index: mining, split, training signal, export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragtune.errors import RagtuneError
from ragtune.records import QAExample, write_jsonl
from tuner.retriever_data import ChunkTable, doc_recall, mine_triples, split_by_document

PEOPLE = [
    ("Orla Venn", "glassblower", "Kettering Vale", "amber lanterns"),
    ("Bram Oduya", "cartographer", "Sallow Reach", "tidal charts"),
    ("Ines Marlow", "beekeeper", "Dunmore Flats", "heather honey"),
    ("Teodor Piel", "clockmaker", "Ashgrove", "brass orreries"),
    ("Wren Halloway", "shipwright", "Port Calder", "river barges"),
    ("Nadia Restrepo", "luthier", "Cobble Hythe", "cedar violins"),
    ("Joss Amberley", "cheesemaker", "Fenwick Down", "smoked rounds"),
    ("Pim Sorensen", "bookbinder", "Larkspur Row", "vellum ledgers"),
    ("Esme Tarrow", "dyer", "Millbrook", "indigo cloth"),
    ("Cato Brennick", "farrier", "Hollin Cross", "iron shoes"),
    ("Yara Quist", "potter", "Redwater", "salt-glazed jugs"),
    ("Lio Fenn", "weaver", "Thistle Green", "wool blankets"),
]


@pytest.fixture(scope="module")
def world(module_tmp):
    from ingest import ingest

    root = module_tmp("retriever_world")
    docs = [
        {
            "id": f"d{i}",
            "title": name,
            "text": f"{name} is a {job} who lives in {town}. {name.split()[0]} is best known for {item}.",
        }
        for i, (name, job, town, item) in enumerate(PEOPLE)
    ]
    write_jsonl(root / "docs.jsonl", docs)
    qa = []
    for i, (name, job, town, item) in enumerate(PEOPLE):
        qa.append({"id": f"q{i}a", "question": f"Who makes {item}?", "answer": name, "doc_ids": [f"d{i}"]})
        qa.append(
            {
                "id": f"q{i}b",
                "question": f"Which {job} lives in {town}?",
                "answer": name,
                "doc_ids": [f"d{i}"],
            }
        )
    write_jsonl(root / "qa.jsonl", qa)
    ingest([root / "docs.jsonl"], root / "index", show_progress=False)
    return root


@pytest.fixture(scope="module")
def trained(world):
    from tuner.retriever_train import train_retriever

    return train_retriever(
        world / "qa.jsonl",
        world / "index",
        world / "retr",
        epochs=3,
        batch_size=8,
        learning_rate=1e-3,
        val_fraction=0.25,
        seed=0,
    )


def _margin(encoder, triples):
    q = encoder.encode([t.question for t in triples])
    p = encoder.encode([t.positive for t in triples])
    n = encoder.encode([t.negatives[0] for t in triples])
    return float(np.mean((q * p).sum(1) - (q * n).sum(1)))


def test_training_widens_the_margin_and_exports_a_plain_model(world, trained):
    from ragtune.artifacts import read_artifact
    from ragtune.records import load_qa
    from retriever import Encoder
    from tuner.retriever_train import load_chunk_table

    out = world / "retr"
    assert (out / "modules.json").is_file() and (out / "adapter" / "adapter_config.json").is_file()
    adapter_cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == "all-MiniLM-L6-v2"  # portable, not an absolute path
    art = read_artifact(out)
    assert art["kind"] == "retriever" and art["method"] == "lora"
    assert art["metrics"]["recall_before"] == trained.recall_before
    assert 0.0 <= trained.recall_before <= 1.0 and 0.0 <= trained.recall_after <= 1.0
    assert 0 < trained.trainable_params < trained.total_params / 20
    assert trained.n_train + trained.n_val == 2 * len(PEOPLE)
    assert "--full --retriever" in trained.summary()

    base, tuned = Encoder(), Encoder(out)
    table, _ = load_chunk_table(world / "index", out)
    questions = load_qa(world / "qa.jsonl")
    triples = mine_triples(
        questions,
        base.encode([q.question for q in questions]),
        base.encode(table.texts),
        table,
        hard_negatives=1,
    )
    assert (
        _margin(tuned, triples) > _margin(base, triples) + 0.02
    )  # it learned to separate gold from negatives

    via_adapter = Encoder(adapter=out / "adapter")
    texts = table.texts[:4]
    merged_fp32 = Encoder(out, engine="torch")  # `auto` may run bf16 on this CPU: parity is checked in fp32
    np.testing.assert_allclose(
        via_adapter.encode(texts), merged_fp32.encode(texts), atol=1e-4
    )  # merge parity


def test_a_new_retriever_is_refused_by_the_old_index(world, trained):
    from retriever import FingerprintMismatch, Retriever

    with pytest.raises(FingerprintMismatch, match=r"--full --retriever"):
        Retriever.open(world / "index", retriever=world / "retr")


@pytest.mark.parametrize(
    "qa, flags, message",
    [
        ({"question": "Who?", "answer": "x"}, {}, "has no `doc_ids`"),
        ({"question": "Who?", "answer": "x", "doc_ids": ["nope"]}, {}, "does not hold"),
        ({"question": "Who?", "answer": "x", "doc_ids": ["d0"]}, {"batch_size": 1}, "--batch-size >= 2"),
    ],
)
def test_bad_input_is_refused_before_training(world, tmp_path, qa, flags, message):
    from tuner.retriever_train import train_retriever

    write_jsonl(tmp_path / "qa.jsonl", [qa])
    with pytest.raises(RagtuneError, match=message):
        train_retriever(tmp_path / "qa.jsonl", world / "index", tmp_path / "out", **flags)
    assert not (tmp_path / "out").exists()


def _ex(i: int, doc: str) -> QAExample:
    return QAExample(id=f"q{i}", question=f"q{i}", answers=("a",), doc_ids=(doc,))


def test_split_keeps_each_document_on_one_side():
    examples = [_ex(i, f"d{i % 10}") for i in range(60)]
    train, val = split_by_document(examples, 0.3, seed=1)
    assert {e.doc_ids[0] for e in train}.isdisjoint({e.doc_ids[0] for e in val})
    assert len(train) + len(val) == 60 and val
    assert split_by_document(examples, 0.3, seed=1) == (train, val)  # seeded, stable


def test_mining_never_returns_gold_and_recall_aggregates_chunks_by_max():
    table = ChunkTable(["c0", "c1", "c2", "c3"], ["g", "g", "x", "y"], ["gold a", "gold b", "near", "far"])
    chunks = np.eye(4, dtype=np.float32)
    q = np.array([[0.2, 0.5, 0.9, 0.1]], dtype=np.float32)  # the best chunk is a distractor
    (t,) = mine_triples([_ex(0, "g")], q, chunks, table, hard_negatives=3)
    assert t.positive == "gold b" and t.negatives == ("near", "far")
    assert doc_recall([_ex(0, "g")], q, chunks, table, k=1) == 0.0
    assert doc_recall([_ex(0, "g")], q, chunks, table, k=2) == 1.0  # doc g scores max(0.2, 0.5) > y's 0.1


def test_cli_reports_bad_input_without_a_traceback(world, tmp_path):
    from cli_helpers import run_cli

    write_jsonl(tmp_path / "qa.jsonl", [{"question": "Who?", "answer": "x", "doc_ids": ["nope"]}])
    proc = run_cli(
        "tune",
        "retriever",
        "--data",
        str(tmp_path / "qa.jsonl"),
        "--index",
        str(world / "index"),
        "--out",
        str(tmp_path / "out"),
        check=False,
    )
    assert proc.returncode == 2 and "does not hold" in proc.stderr and "Traceback" not in proc.stderr
