"""The tiny base model build: deterministic, cached by its inputs, an ordinary transformers folder."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from demo.general import general_corpus
from ragtune.artifacts import read_artifact
from tuner.base_build import BaseTrainConfig, build_base, encode, read_corpus
from tuner.base_model import TinyModelConfig, train_tokenizer

TINY = TinyModelConfig(
    vocab_size=400,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
)
STEPS = BaseTrainConfig(steps=6, batch_size=4, warmup=2)


@pytest.fixture(scope="module")
def corpus(module_tmp):
    return general_corpus(
        module_tmp("corpus"),
        n_people=40,
        n_heldout=5,
        n_reading=30,
        n_closed_book=10,
        max_questions=3,
    )


def test_build_is_deterministic_and_cached(tmp_path, corpus):
    a = build_base(corpus, tmp_path / "a", TINY, STEPS, progress=False)
    b = build_base(corpus, tmp_path / "b", TINY, STEPS, progress=False)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    art = read_artifact(a)
    assert art["method"] == "from-scratch" and len(art["metrics"]["loss_every_50_steps"]) == 0
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    build_base(corpus, a, TINY, STEPS, progress=False)  # same inputs: reused, not rebuilt
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime
    c = build_base(
        corpus, tmp_path / "c", TINY, BaseTrainConfig(steps=6, batch_size=4, warmup=2, seed=1), progress=False
    )
    assert (c / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()


def test_answer_tokens_are_every_assistant_turn(corpus):
    texts, chats = read_corpus(corpus)
    tok = train_tokenizer(texts[:20], 400)
    multi = next(c for c in chats if sum(m["role"] == "assistant" for m in c) > 1)
    ((ids, answer),) = encode(tok, [], [multi], 1024)
    got = tok.decode([ids[i] for i in answer], skip_special_tokens=False)
    want = "".join(f"{m['content']}<|end|>" for m in multi if m["role"] == "assistant")
    assert got == want


def test_cli_builds_a_loadable_model(tmp_path, corpus):
    out = tmp_path / "base"
    run_cli(
        "base",
        "build",
        "--corpus",
        str(corpus[0]),
        "--corpus",
        str(corpus[1]),
        "--out",
        str(out),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--hidden-size",
        "32",
        "--layers",
        "1",
        "--vocab-size",
        "400",
    )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 1 and tok.eos_token == "<|end|>"
    assert json.loads((out / "ragtune.json").read_text())["train_config"]["steps"] == 3


def test_cli_rejects_a_missing_corpus(tmp_path):
    proc = run_cli(
        "base", "build", "--corpus", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "m"), check=False
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr
