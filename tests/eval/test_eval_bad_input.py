"""Bad input is a clear RagtuneError before any generation starts."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
from cli_helpers import run_cli
from eval_toy import toy  # noqa: F401 - the fixture

from eval import SystemSpec, run_comparison
from ragtune.errors import RagtuneError
from ragtune.records import write_jsonl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _foreign_index(toy, tmp_path):
    """A copy of the toy index whose manifest says another encoder built it."""
    from retriever import current_version

    index = tmp_path / "foreign"
    shutil.copytree(toy["index"], index)
    manifest = index / "versions" / current_version(index) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["encoder"]["weights_sha256"] = "0" * 64
    manifest.write_text(json.dumps(m))
    return index


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing model", "does not exist; build or export it first"),
        ("not a model", "is not a Hugging Face model folder"),
        ("unknown doc ids", "does not hold, e.g. ['nowhere']"),
        ("missing answers", "`answer` must be a string or a list of strings"),
        ("foreign encoder", "was built with encoder"),
        ("missing index", "index folder"),
        ("unreachable url", "is unreachable"),
        ("fewshot without train", "pass the training split"),
        ("rag without index", "names no index"),
    ],
)
def test_bad_input_fails_before_generation(case, message, tiny_generator, toy, tmp_path):
    gen, qa, out = str(tiny_generator), toy["qa"], tmp_path / "out"
    systems = lambda **kw: [SystemSpec("s", **({"model": gen} | kw))]
    with pytest.raises(RagtuneError, match=None) as err:
        if case == "missing model":
            run_comparison(qa, systems(model=str(tmp_path / "nope")), out_dir=out, progress=False)
        elif case == "not a model":
            run_comparison(qa, systems(model=str(tmp_path)), out_dir=out, progress=False)
        elif case == "unknown doc ids":
            write_jsonl(tmp_path / "qa.jsonl", [{"question": "Q?", "answer": "a", "doc_ids": ["nowhere"]}])
            run_comparison(
                tmp_path / "qa.jsonl",
                systems(retrieval=True, index=str(toy["index"])),
                out_dir=out,
                progress=False,
            )
        elif case == "missing answers":
            write_jsonl(tmp_path / "qa.jsonl", [{"question": "Q?", "answer": "a"}, {"question": "R?"}])
            run_comparison(tmp_path / "qa.jsonl", systems(), out_dir=out, progress=False)
        elif case == "foreign encoder":
            run_comparison(
                qa,
                systems(retrieval=True, index=str(_foreign_index(toy, tmp_path))),
                out_dir=out,
                progress=False,
            )
        elif case == "missing index":
            run_comparison(
                qa, systems(retrieval=True, index=str(tmp_path / "none")), out_dir=out, progress=False
            )
        elif case == "unreachable url":
            run_comparison(
                qa, [SystemSpec("s", url=f"http://127.0.0.1:{_free_port()}")], out_dir=out, progress=False
            )
        elif case == "fewshot without train":
            run_comparison(qa, systems(fewshot=2), out_dir=out, progress=False)
        elif case == "rag without index":
            systems(retrieval=True)
    assert message in str(err.value)
    assert not (out / "predictions").exists()  # nothing generated


def test_cli_bad_systems_are_usage_errors(toy, tmp_path):
    proc = run_cli(
        "eval",
        "--qa",
        str(toy["qa"]),
        "--systems",
        "base,ft+rag",
        "--base",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
        check=False,
    )
    assert (
        proc.returncode == 2 and "needs a model named 'ft'" in proc.stderr and "Traceback" not in proc.stderr
    )
    proc = run_cli(
        "eval",
        "--qa",
        str(toy["qa"]),
        "--systems",
        "base",
        "--base",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "o"),
        check=False,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr
