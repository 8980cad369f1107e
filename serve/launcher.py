"""`start_server`: run `ragtune serve` as a subprocess on 127.0.0.1 and wait until it is ready."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from ragtune.errors import RagtuneError


class ServerHandle:
    """A running `ragtune serve` subprocess: `.url` (http://127.0.0.1:PORT), `.base_url`, `.stop()`."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, api_key: str | None):
        self.proc, self.port, self.log_path, self.api_key = proc, port, log_path, api_key
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v1"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful: in-flight requests finish), then SIGKILL after `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.returncode in (0, -signal.SIGTERM):  # a clean stop: its log is of no further use
            shutil.rmtree(self.log_path.parent, ignore_errors=True)
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle({self.url!r}, pid={self.proc.pid})"


def start_server(
    model_dir: str | Path | None,
    index_dir: str | Path | None,
    retriever: str | Path | None = None,
    port: int = 0,
    api_key: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 180.0,
    env: dict[str, str] | None = None,
) -> ServerHandle:
    """Start `ragtune serve` on 127.0.0.1:`port` (0: a free one) and return once /readyz answers 200.

    `model_dir`: a Hugging Face folder, `default` (the embedded SmolLM2-135M-Instruct), or None to leave
    --model unset (a settings file or RAGTUNE_MODEL may name one; else `default` serves)."""
    import httpx

    work = Path(tempfile.mkdtemp(prefix="ragtune-serve-"))
    port_file, log_path = work / "port", work / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "ragtune",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--port-file",
        str(port_file),
    ]
    if model_dir is not None:
        cmd += ["--model", str(model_dir)]
    if index_dir is not None:
        cmd += ["--index", str(index_dir)]
    if retriever is not None:
        cmd += ["--retriever", str(retriever)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    if api_key is not None:
        full_env["RAGTUNE_API_KEY"] = api_key  # not on the command line, where `ps` would show it
    cmd += list(extra_args)
    repo = Path(__file__).resolve().parents[1]
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), full_env.get("PYTHONPATH", "")) if p)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=str(repo))
    deadline = time.monotonic() + timeout
    handle = None
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RagtuneError(
                    f"`ragtune serve` exited with status {proc.returncode} before it was ready:\n"
                    f"{log_path.read_text(errors='replace')[-3000:]}"
                )
            if handle is None and port_file.is_file():
                handle = ServerHandle(proc, int(port_file.read_text()), log_path, api_key)
            if handle is not None:
                try:
                    if httpx.get(f"{handle.url}/readyz", timeout=2.0).status_code == 200:
                        return handle
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise RagtuneError(
            f"`ragtune serve` was not ready within {timeout:.0f} s:\n"
            f"{log_path.read_text(errors='replace')[-3000:]}"
        )
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        raise
