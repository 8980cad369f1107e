"""No absolute path of the machine in report.md, report.html or results.json (issue 25): models by folder
name and content hash, folders relative to the report or `~`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eval_toy import toy  # noqa: F401 - the fixture

from eval import SystemSpec, run_comparison, write_report
from eval.report_paths import portable_text

ABSOLUTE = re.compile(r"(?<![\w.:/~\-])/(?:tmp|home|root|work|Users|var|private|opt|srv|mnt)(?:/|\b)")


def _machine_paths(text: str, *roots: Path) -> list[str]:
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # the charts' bytes
    found = [m.group(0) for m in ABSOLUTE.finditer(text)]
    return found + [str(r) for r in roots if str(r) in text]


def test_portable_text():
    home = os.path.realpath(os.path.expanduser("~"))
    assert portable_text(f"model {home}/.cache/ragtune/smollm2", "/tmp") == "model ~/.cache/ragtune/smollm2"
    assert portable_text("--index=/tmp/run/index and /tmp/run/report/charts", "/tmp/run/report") == (
        "--index=../index and charts"
    )
    assert portable_text("/usr/share/models/ft", "/tmp/run/report") == ".../models/ft"  # nothing in common
    kept = "http://127.0.0.1:8000/v1/chat EM / F1 1/2 /v1/retrieve a/b"  # no machine path in there
    assert portable_text(kept, "/tmp/run/report") == kept


def test_reports_hold_no_machine_paths(tiny_generator, toy, tmp_path):
    systems = [
        SystemSpec("base", model=str(tiny_generator), max_tokens=4),
        SystemSpec(
            "rag", model=str(tiny_generator), retrieval=True, index=str(toy["index"]), top_k=2, max_tokens=4
        ),
    ]
    res = run_comparison(toy["qa"], systems, out_dir=tmp_path / "eval", n_resamples=50, progress=False)
    home_model = Path.home() / ".cache" / "ragtune" / "models" / "some-model"
    res["run"] = {
        "lines": [f"Serve the winner: `ragtune serve --from {tmp_path}`", f"base model {home_model}"]
    }
    res["forgetting_note"] = {"ft_model": str(Path.cwd() / "models" / "ft")}  # the project folder
    report = tmp_path / "report"
    paths = write_report(res, report)
    assert str(tiny_generator) in json.dumps(res)  # the results in memory had them all
    for kind in ("md", "html", "json"):
        text = paths[kind].read_text()
        assert _machine_paths(text, tmp_path, Path.cwd(), Path.home() / ".cache", tiny_generator) == [], kind
    body = json.loads(paths["json"].read_text())
    spec = body["splits"]["test"]["systems"]["rag"]["spec"]
    assert spec["model"] == os.path.relpath(os.path.realpath(tiny_generator), os.path.realpath(report))
    assert spec["index"].startswith("../") and spec["index"].endswith("/index")
    assert body["run"]["lines"][0] == "Serve the winner: `ragtune serve --from ..`"
    assert body["run"]["lines"][1] == "base model ~/.cache/ragtune/models/some-model"
    md = paths["md"].read_text()
    name, sha = (
        Path(tiny_generator).name,
        body["splits"]["test"]["systems"]["base"]["describe"]["model_sha256"],
    )
    assert f"| base | {name} | {sha[:12]} |" in md  # the model by folder name and content hash
