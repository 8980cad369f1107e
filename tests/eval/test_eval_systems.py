"""Systems named on the command line or in YAML become the right SystemSpecs; bad ones are refused."""

from __future__ import annotations

import re

import pytest

from eval import SystemSpec, load_systems_yaml, parse_systems
from ragtune.errors import RagtuneError

MODELS = {"base": "/m/base", "ft": "/m/ft", "raft": "/m/raft"}


@pytest.mark.parametrize(
    "token, model, retrieval, fewshot, base_model",
    [
        ("base", "/m/base", False, 0, None),
        ("fewshot", "/m/base", False, 3, None),
        ("rag", "/m/base", True, 0, None),
        ("ft", "/m/ft", False, 0, "/m/base"),
        ("ft+rag", "/m/ft", True, 0, "/m/base"),
        ("raft+rag", "/m/raft", True, 0, "/m/base"),
    ],
)
def test_parse_systems(token, model, retrieval, fewshot, base_model):
    (s,) = parse_systems(token, models=MODELS, index="/idx", top_k=5, fewshot=3, seed=4)
    assert (s.name, s.model, s.retrieval, s.fewshot, s.base_model) == (
        token,
        model,
        retrieval,
        fewshot,
        base_model,
    )
    assert s.top_k == 5 and s.fewshot_seed == 4 and s.index == "/idx" and s.mode == "in-process"


def test_parse_systems_by_url():
    base, rag = parse_systems("base,rag", urls={"base": "http://127.0.0.1:9/"})
    assert base.url == "http://127.0.0.1:9" and rag.retrieval and rag.mode == "http" and rag.index is None


@pytest.mark.parametrize(
    "names, message",
    [
        ("base,ft", "needs a model named 'ft'"),
        ("base,base", "given twice"),
        ("base+bm25", "expected NAME or NAME+rag"),
        (" , ", "--systems is empty"),
    ],
)
def test_parse_systems_refuses(names, message):
    with pytest.raises(RagtuneError, match=re.escape(message)):
        parse_systems(names, models={"base": "/m/base"}, index="/idx")


def test_systems_yaml_defaults_and_relative_paths(tmp_path):
    (tmp_path / "models" / "ft").mkdir(parents=True)
    (tmp_path / "s.yaml").write_text(
        "index: /idx\ntop_k: 2\nsystems:\n"
        "  - {name: ft+rag, model: models/ft, retrieval: true}\n"
        "  - {name: remote, url: 'http://127.0.0.1:8000', top_k: 7}\n"
    )
    ft, remote = load_systems_yaml(tmp_path / "s.yaml")
    assert ft.model == str(tmp_path / "models" / "ft") and ft.top_k == 2 and ft.index == "/idx"
    assert remote.top_k == 7 and remote.mode == "http"


@pytest.mark.parametrize(
    "text, message",
    [
        ("systems: []\n", "non-empty `systems:` list"),
        ("systems:\n  - {name: a, model: /m, colour: red}\n", "unknown field"),
        ("systems:\n  - {name: a}\n", "give `model`"),
        ("systems: [\n", "not valid YAML"),
    ],
)
def test_systems_yaml_refuses(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(RagtuneError, match=re.escape(message)):
        load_systems_yaml(tmp_path / "s.yaml")


def test_api_key_never_reaches_the_report():
    assert SystemSpec("s", url="http://x", api_key="sekrit").to_dict()["api_key"] == "***"
