"""Crash safety: kill -9 a real `ragtune tune generator` mid-run, resume, and land where an unbroken run lands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragtune.artifacts import read_artifact
from ragtune.errors import RagtuneError
from tuner import train_generator

HP = {
    "method": "lora",
    "learning_rate": 1e-2,
    "max_steps": 30,
    "batch_size": 4,
    "val_fraction": 0.25,
    "eval_steps": 5,
    "logging_steps": 5,
    "seed": 0,
}


def _flags(hp: dict) -> list[str]:
    return [x for k, v in hp.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def _wait_for_checkpoint(path, proc, timeout=240.0) -> None:
    t0 = time.monotonic()
    while not (path / "trainer_state.json").is_file():
        if proc.poll() is not None:
            raise AssertionError(f"training ended before it could be killed:\n{proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.02)


def test_resume_after_kill_matches_unbroken_run(tiny_generator, world, tmp_path):
    base, data = str(tiny_generator), str(world["qa"])
    crash = tmp_path / "crash"
    cmd = [
        sys.executable,
        "-m",
        "ragtune",
        "tune",
        "generator",
        "--base",
        base,
        "--data",
        data,
        "--out",
        str(crash),
        *_flags(HP),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAGTUNE_LOG_LEVEL": "WARNING"},
        cwd=Path(__file__).parents[2],
    )
    try:
        _wait_for_checkpoint(crash / "checkpoints" / "checkpoint-5", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (crash / "ragtune.json").exists()  # it really died mid-run

    with pytest.raises(RagtuneError, match="--resume"):
        train_generator(base, data, str(crash), **HP)  # a second run must not silently overwrite
    with pytest.raises(
        RagtuneError, match=r"different settings than the interrupted run: \['learning_rate'\]"
    ):
        train_generator(base, data, str(crash), resume=True, **{**HP, "learning_rate": 0.5})
    resumed = train_generator(base, data, str(crash), resume=True, **HP)
    unbroken = train_generator(base, data, str(tmp_path / "unbroken"), **HP)

    assert resumed.resumed_from is not None and int(resumed.resumed_from.rsplit("-", 1)[1]) >= 5
    assert resumed.steps == unbroken.steps == HP["max_steps"]
    last_resumed = [h for h in resumed.train_losses if h["step"] == HP["max_steps"]]
    last_unbroken = [h for h in unbroken.train_losses if h["step"] == HP["max_steps"]]
    assert last_resumed and last_resumed[0]["loss"] == pytest.approx(last_unbroken[0]["loss"], abs=2e-3)
    assert resumed.best_eval_loss == pytest.approx(unbroken.best_eval_loss, abs=2e-3)
    assert resumed.eval_loss_before == pytest.approx(unbroken.eval_loss_before, abs=1e-6)
    assert read_artifact(crash)["metrics"]["steps"] == HP["max_steps"]
