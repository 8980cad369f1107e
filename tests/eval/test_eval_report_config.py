"""The report's configuration table names how each system retrieved: off, dense, bm25, hybrid and its fusion."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from eval.backends import InProcess, _Shared
from eval.report import write_report
from eval.report_tables import config_table
from eval.systems import SystemSpec


def _spec(name, retrieval=True, mode=None, fusion="rrf", weight=0.5, url=None):
    return {
        "name": name,
        "model": None if url else f"/models/{name}",
        "url": url,
        "retrieval": retrieval,
        "top_k": 3,
        "index": None if url else "/idx",
        "index_version": None,
        "retriever": None,
        "retrieval_mode": mode,
        "fusion": fusion,
        "fusion_weight": weight,
        "fewshot": 0,
        "fewshot_seed": 0,
    }


def _system(spec, describe):
    return {
        "spec": spec,
        "describe": describe,
        "n": 10,
        "cached": 0,
        "generated": 10,
        "missing": 0,
        "metrics": {"exact_match": {"mean": 10.0, "low": 0.0, "high": 20.0, "n": 10}},
        "cost": {"latency_p50_s": 0.1, "latency_p95_s": 0.2},
    }


IN = {"mode": "in-process", "index_version": "v000001"}
SYSTEMS = {
    "base": _system(_spec("base", retrieval=False), {"mode": "in-process"}),
    "dense": _system(_spec("dense", mode="dense"), {**IN, "retrieval_kind": "dense"}),
    "bm25": _system(_spec("bm25", mode="bm25"), {**IN, "retrieval_kind": "bm25"}),
    # no mode named: the retriever's default, recorded as the kind it ran
    "hybrid": _system(_spec("hybrid"), {**IN, "retrieval_kind": "hybrid"}),
    "weighted": _system(
        _spec("weighted", mode="hybrid", fusion="weighted", weight=0.7), {**IN, "retrieval_kind": "hybrid"}
    ),
    # asked for hybrid on an index without a lexical part: the kind it fell back to, not the one asked
    "fallback": _system(_spec("fallback"), {**IN, "retrieval_kind": "dense"}),
    "served": _system(_spec("served", url="http://x"), {"mode": "http"}),
    "served-hybrid": _system(_spec("served-hybrid", mode="hybrid", url="http://x"), {"mode": "http"}),
}
EXPECTED = {
    "base": "off",
    "dense": "dense",
    "bm25": "bm25",
    "hybrid": "hybrid, RRF",
    "weighted": "hybrid, weighted (dense 0.7)",
    "fallback": "dense",
    "served": "the server's default",
    "served-hybrid": "hybrid (the server's fusion)",
}


def test_the_configuration_table_names_each_systems_retrieval_and_fusion():
    header, rows = config_table({"systems": SYSTEMS})
    col = header.index("retrieval")
    assert {r[0]: r[col] for r in rows} == EXPECTED


def test_results_written_before_retrieval_modes_still_render():
    old = _spec("rag")
    for key in ("retrieval_mode", "fusion", "fusion_weight"):
        del old[key]
    header, rows = config_table({"systems": {"rag": _system(old, dict(IN))}})
    assert rows[0][header.index("retrieval")] == "–"


def test_report_md_configuration_table_shows_the_modes(tmp_path):
    split = {
        "qa": {"n": 10},
        "systems": SYSTEMS,
        "comparisons": [],
        "disagreements": [],
        "per_question": {},
    }
    results = {
        "ragtune_eval": 1,
        "config": {"seed": 0, "n_resamples": 100, "batch_size": 4, "ci": 0.95, "metric": "exact_match"},
        "splits": {"test": split},
    }
    md = write_report(results, tmp_path)["md"].read_text(encoding="utf-8")
    table = md[md.index("| system | model (folder name) / url") :].split("\n\n")[0]
    lines = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    for name, cell in EXPECTED.items():
        assert f"| {cell} |" in lines[name], (name, lines[name])


class _Retriever:  # what _Shared needs of a retriever.Retriever
    version = "v000002"
    encoder = SimpleNamespace(fingerprint={"id": "abc"})

    def kind(self, mode):
        return mode.kind or "hybrid"


@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid", None])
def test_an_in_process_system_records_the_kind_its_retriever_ran(kind, monkeypatch, tmp_path):
    from eval import backends
    from retriever import RetrievalMode

    monkeypatch.setattr(backends, "folder_hash", lambda _p: "0" * 64)  # no model folder: only its hash
    spec = SystemSpec(name="rag", model=str(tmp_path), retrieval=True, index="/idx", retrieval_mode=kind)
    mode = RetrievalMode(spec.retrieval_mode, spec.fusion, spec.fusion_weight)
    info = InProcess(spec, None, _Shared(_Retriever(), mode)).describe()
    assert info["retrieval_kind"] == (kind or "hybrid")
    header, rows = config_table({"systems": {"rag": _system(spec.to_dict(), info)}})
    assert rows[0][header.index("retrieval")] == ("hybrid, RRF" if kind in (None, "hybrid") else kind)
