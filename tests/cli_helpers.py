"""Helpers test modules import (`from cli_helpers import run_cli`): the real CLI in a subprocess, data paths.

A uniquely named module, because `conftest` names a different file in each test folder that has one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# Public evaluation data (SQuAD, BEIR) lives beside the checkout, not in it; tests on it skip without it.
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "squad_v1.1").is_dir(), reason=f"public evaluation data not found at {SHARED_DATA}"
)


def run_cli(*args: str, check: bool = True, timeout: float = 600, env: dict | None = None, cwd=None):
    """Run the real `ragtune` command line in a subprocess; return the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "ragtune", *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"ragtune {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
