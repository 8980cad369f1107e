"""run_comparison in-process on a tiny real generator and a real index: reruns, resume, freshness."""

from __future__ import annotations

import json
import shutil

import pytest
from eval_toy import DOCS_V2, toy  # noqa: F401 - the fixture

from eval import SystemSpec, run_comparison, write_report
from ragtune.records import write_jsonl


def _systems(gen, toy):
    return [
        SystemSpec("base", model=str(gen), max_tokens=8),
        SystemSpec("fewshot", model=str(gen), fewshot=2, fewshot_seed=1, max_tokens=8),
        SystemSpec("rag", model=str(gen), retrieval=True, index=str(toy["index"]), top_k=2, max_tokens=8),
    ]


def _stable(res):
    """Everything but timings: predictions, passages, metrics, CIs, comparisons."""
    s = res["splits"]["test"]
    return (
        json.dumps(s["per_question"], sort_keys=True),
        json.dumps(s["comparisons"], sort_keys=True),
        json.dumps({n: v["metrics"] for n, v in s["systems"].items()}, sort_keys=True),
    )


def _compare(gen, toy, out, **kw):
    """run_comparison of `_systems` on the toy's test questions into `out`, 200 resamples, batches of 2."""
    return run_comparison(
        toy["qa"],
        _systems(gen, toy),
        out_dir=out,
        train_qa=toy["train"],
        n_resamples=200,
        batch_size=2,
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def first_run(tiny_generator, toy, module_tmp):
    out = module_tmp("run1")
    res = _compare(tiny_generator, toy, out)
    return out, res


def test_rerun_is_identical_and_the_report_is_complete(first_run, tiny_generator, toy, tmp_path):
    _out, res = first_run
    again = _compare(tiny_generator, toy, tmp_path, resume=False)
    assert _stable(again) == _stable(res)
    systems = res["splits"]["test"]["systems"]
    assert systems["rag"]["metrics"]["recall@5"]["mean"] == 1.0  # 3 documents, top 2, gold first
    assert len(systems["fewshot"]["fewshot_questions"]) == 2 and systems["base"]["fewshot_questions"] == []
    assert (
        systems["rag"]["describe"]["index_version"] and len(systems["base"]["describe"]["model_sha256"]) == 64
    )
    paths = write_report(res, tmp_path / "report")
    html = paths["html"].read_text()
    assert "data:image/png;base64," in html and "src='charts" not in html  # self-contained
    body = json.loads(paths["json"].read_text())
    assert body["splits"]["test"]["qa"]["n"] == 3 and body["config"]["seed"] == 0
    md = paths["md"].read_text()
    assert "| base − rag | F1 |" in md
    assert md.startswith("# ragtune evaluation report\n\n## Verdict\n\n| system | contains [95% CI] | EM % |")
    assert "\n\nFor held-out questions (test, n=3) deploy " in md
    assert body["verdict"]["splits"]["test"]["best"] in systems and len(body["verdict"]["costs"]) == 3


def test_interrupted_run_resumes_from_cached_predictions(first_run, tiny_generator, toy, tmp_path):
    out, res = first_run
    work = tmp_path / "out"
    shutil.copytree(out / "predictions", work / "predictions")
    cache = work / "predictions" / "test" / "rag.jsonl"
    lines = cache.read_text().splitlines(keepends=True)
    cache.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed while writing the second row
    again = _compare(tiny_generator, toy, work)
    rag = again["splits"]["test"]["systems"]["rag"]
    assert (rag["cached"], rag["generated"]) == (1, 2)
    assert again["splits"]["test"]["systems"]["base"]["generated"] == 0
    assert _stable(again) == _stable(res)
    # a changed configuration (another seed for the few-shot draw) is not served from the cache
    changed = _systems(tiny_generator, toy)
    changed[1].fewshot_seed = 7
    res3 = run_comparison(
        toy["qa"], changed, out_dir=work, train_qa=toy["train"], n_resamples=200, progress=False
    )
    assert res3["splits"]["test"]["systems"]["fewshot"]["generated"] == 3


def test_freshness_on_a_two_fact_toy(tiny_generator, toy, tmp_path):
    from ingest import ingest

    index = tmp_path / "index"
    shutil.copytree(toy["index"], index)
    from retriever import current_version

    old = current_version(index)
    write_jsonl(tmp_path / "docs.jsonl", DOCS_V2)
    report = ingest([tmp_path / "docs.jsonl"], index, show_progress=False)  # refresh: no retraining
    assert report.plan.changed == ["tomas"] and current_version(index) != old
    systems = [
        SystemSpec("rag", model=str(tiny_generator), retrieval=True, index=str(index), top_k=1, max_tokens=8),
        SystemSpec(
            "rag@old",
            model=str(tiny_generator),
            retrieval=True,
            index=str(index),
            index_version=old,
            top_k=1,
            max_tokens=8,
        ),
        SystemSpec("base", model=str(tiny_generator), max_tokens=8),
    ]
    res = run_comparison(
        toy["fresh_qa"], systems, out_dir=tmp_path / "out", split="freshness", n_resamples=100, progress=False
    )
    fresh = {n: s["freshness"] for n, s in res["splits"]["freshness"]["systems"].items()}
    assert fresh["rag"]["passages"] == {"new": 1, "stale": 0, "both": 0, "neither": 0}
    assert fresh["rag@old"]["passages"] == {"new": 0, "stale": 1, "both": 0, "neither": 0}
    assert "passages" not in fresh["base"]
    for name, f in fresh.items():  # the answer's own label: whatever the untrained model said, counted once
        assert f["n"] == 1 and f["new"] + f["stale"] + f["both"] + f["neither"] == 1
        pred = res["splits"]["freshness"]["per_question"][name][0]
        assert pred["freshness"] in ("new", "stale", "both", "neither")
    paths = write_report(res, tmp_path / "out")
    assert "Freshness" in paths["md"].read_text()
