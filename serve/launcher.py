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
    work = Path(tempfile.mkdtemp(prefix="ragtune-serve-"))
    port_file, log_path = work / "port", work / "server.log"
    flags = {"--model": model_dir, "--index": index_dir, "--retriever": retriever}
    cmd = [sys.executable, "-m", "ragtune", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--port-file", str(port_file)]
    cmd += [arg for flag, value in flags.items() if value is not None for arg in (flag, str(value))]
    cmd += list(extra_args)
    repo = Path(__file__).resolve().parents[1]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=_server_env(repo, api_key, env), cwd=str(repo)
        )
    try:
        return _wait_ready(proc, port_file, log_path, api_key, timeout)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        raise


def _server_env(repo: Path, api_key: str | None, env: dict[str, str] | None) -> dict[str, str]:
    """The child's environment: offline hub, this checkout first on PYTHONPATH, the key (if any)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    if api_key is not None:
        full_env["RAGTUNE_API_KEY"] = api_key  # not on the command line, where `ps` would show it
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), full_env.get("PYTHONPATH", "")) if p)
    return full_env


def _wait_ready(
    proc: subprocess.Popen, port_file: Path, log_path: Path, api_key: str | None, timeout: float
) -> ServerHandle:
    """Poll until the server wrote its port and /readyz answers 200; a RagtuneError with its log's tail if
    it exits first or is not ready within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    handle = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RagtuneError(
                f"`ragtune serve` exited with status {proc.returncode} before it was ready:\n"
                f"{log_path.read_text(errors='replace')[-3000:]}"
            )
        if handle is None and port_file.is_file():
            handle = ServerHandle(proc, int(port_file.read_text()), log_path, api_key)
        if handle is not None and _answers_ready(handle.url):
            return handle
        time.sleep(0.2)
    raise RagtuneError(
        f"`ragtune serve` was not ready within {timeout:.0f} s:\n"
        f"{log_path.read_text(errors='replace')[-3000:]}"
    )


def _answers_ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
