"""Training commands keep the terminal to ragtune's own lines: library warnings, model-card bars and the
Trainer's raw log dicts go to the log file, whose path is printed once."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import run_cli

OWN_LOG = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ (ragtune|ingest|retriever|tuner|serve|eval|demo)[.:]")
OWN_BAR = re.compile(r"^\s*training:")


@pytest.mark.parametrize("kind", ["generator", "retriever"])
def test_training_prints_only_ragtune_lines(kind, tiny_generator, world, world_index, tmp_path):
    log_file = tmp_path / "libs.log"
    common = ("--data", str(world["qa"]), "--out", str(tmp_path / "out"))
    if kind == "generator":
        args = ("tune", "generator", "--base", str(tiny_generator), "--max-steps", "2", "--json", *common)
    else:
        args = ("tune", "retriever", "--index", str(world_index), "--epochs", "1", *common)
    proc = run_cli(*args, env={"RAGTUNE_LOG_FILE": str(log_file), "RAGTUNE_LOG_LEVEL": "INFO"})

    if kind == "generator":
        json.loads(proc.stdout)  # stdout is the command's --json and nothing else
    else:
        assert proc.stdout.startswith("retriever ") and "{'" not in proc.stdout, proc.stdout
    lines = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip()]
    leaked = [line for line in lines if not (OWN_LOG.match(line) or OWN_BAR.match(line))]
    assert not leaked, "library output reached the terminal:\n" + "\n".join(leaked)
    notices = [line for line in lines if "library warnings and messages go to" in line]
    assert len(notices) <= 1  # printed once, and only when the file has something in it
    if notices:
        assert notices[0].endswith(str(log_file)) and log_file.read_text().strip()
