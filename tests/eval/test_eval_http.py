"""Black-box systems: a real `ragtune serve` on loopback, asked through the official openai client."""

from __future__ import annotations

import pytest
from eval_toy import toy  # noqa: F401 - the fixture

from eval import SystemSpec, run_comparison
from ragtune.errors import RagtuneError


@pytest.fixture(scope="module")
def server(tiny_generator, toy):
    from serve import start_server

    with start_server(tiny_generator, toy["index"], api_key="sekrit") as handle:
        yield handle


def test_http_systems_match_in_process_ones(server, tiny_generator, toy, tmp_path):
    http = [
        SystemSpec("base", url=server.url, api_key="sekrit", max_tokens=8),
        SystemSpec("rag", url=server.url, api_key="sekrit", retrieval=True, top_k=2, max_tokens=8),
        SystemSpec("fewshot", url=server.url, api_key="sekrit", fewshot=2, max_tokens=8),
    ]
    local = [
        SystemSpec("base", model=str(tiny_generator), max_tokens=8),
        SystemSpec(
            "rag", model=str(tiny_generator), retrieval=True, index=str(toy["index"]), top_k=2, max_tokens=8
        ),
        SystemSpec("fewshot", model=str(tiny_generator), fewshot=2, max_tokens=8),
    ]
    kw = {"train_qa": toy["train"], "n_resamples": 100, "batch_size": 1, "progress": False}
    a = run_comparison(toy["qa"], http, out_dir=tmp_path / "http", **kw)["splits"]["test"]
    b = run_comparison(toy["qa"], local, out_dir=tmp_path / "local", **kw)["splits"]["test"]
    for name in ("base", "rag", "fewshot"):  # the same prompt function and greedy decoding on both paths
        assert [r["prediction"] for r in a["per_question"][name]] == [
            r["prediction"] for r in b["per_question"][name]
        ]
    rag = a["systems"]["rag"]
    assert rag["metrics"]["recall@5"]["mean"] == b["systems"]["rag"]["metrics"]["recall@5"]["mean"] == 1.0
    assert rag["describe"]["index_version"] == b["systems"]["rag"]["describe"]["index_version"]
    assert "grounded" in rag["metrics"] and "grounded" not in a["systems"]["base"]["metrics"]
    assert rag["spec"]["api_key"] == "***"


def test_http_without_key_is_refused_up_front(server, toy, tmp_path):
    with pytest.raises(RagtuneError, match="wants an API key"):
        run_comparison(toy["qa"], [SystemSpec("s", url=server.url)], out_dir=tmp_path, progress=False)
