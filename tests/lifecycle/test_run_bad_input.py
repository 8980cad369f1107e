"""Each bad input to `ragtune run` is one `error:` line that says what to do, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli
from lifecycle_helpers import write_corpus


def _no_docs(root: Path) -> list[str]:
    (root / "docs").mkdir()
    (root / "docs" / "picture.png").write_bytes(b"\x89PNG")
    return []


def _too_few(root: Path) -> list[str]:
    write_corpus(root / "docs", n=3)
    return []


def _bad_qa(root: Path) -> list[str]:
    write_corpus(root / "docs")
    (root / "qa.jsonl").write_text('{"question": "Who?", "answer": "Mara"}\n{"question": "Where?"}\n')
    return ["--qa", str(root / "qa.jsonl")]


def _unknown_doc(root: Path) -> list[str]:
    write_corpus(root / "docs")
    (root / "qa.jsonl").write_text('{"question": "Who?", "answer": "Mara", "doc_ids": ["nowhere.md"]}\n')
    return ["--qa", str(root / "qa.jsonl")]


def _not_chat(root: Path) -> list[str]:
    write_corpus(root / "docs")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (root / "model" / "tokenizer_config.json").write_text("{}")
    return ["--base", str(root / "model")]


def _small_budget(root: Path) -> list[str]:
    write_corpus(root / "docs")
    return ["--budget-minutes", "2"]


def _other_run(root: Path) -> list[str]:
    from lifecycle import RunConfig
    from lifecycle.inputs import check_run_folder, run_identity

    write_corpus(root / "docs")
    write_corpus(root / "other")
    first = RunConfig(docs=str(root / "other"), out=str(root / "run"))
    check_run_folder(first, run_identity(first))
    return []


CASES = {  # name -> (set-up, words the error must hold, whether RUN exists beforehand)
    "no readable documents": (_no_docs, ["holds no readable documents", "picture.png"], False),
    "too few documents": (_too_few, ["holds 3 readable document(s)", "at least 5"], False),
    "bad --qa row": (_bad_qa, ["qa.jsonl:2", "`answer`"], False),
    "--qa names an unknown document": (_unknown_doc, ["doc_ids ['nowhere.md']", "e.g. 'aldmouth.md'"], False),
    "base not a chat model": (_not_chat, ["is not a chat model", "chat template"], False),
    "budget too small": (_small_budget, ["leaves no time for training", "--budget-minutes"], False),
    "run from other inputs": (_other_run, ["holds a run made from other inputs", "docs:", "--force"], True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, case):
    setup, words, existed = CASES[case]
    extra = setup(tmp_path)
    before = sorted(p.name for p in (tmp_path / "run").iterdir()) if existed else None
    proc = run_cli("run", str(tmp_path / "docs"), "--out", str(tmp_path / "run"), *extra, check=False)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in err[-1], (w, err[-1])
    if existed:
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    else:
        assert not (tmp_path / "run").exists()
