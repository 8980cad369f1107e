"""A client that disconnects cancels its generation (streaming and not), over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from serve_helpers import uvicorn_in_thread

LONG = 300  # tokens asked for; far more than a cancelled request may spend


@pytest.fixture(scope="module")
def app_server(chatty_generator, index_dir):
    from serve import create_app

    app = create_app(model=chatty_generator, index=index_dir, max_tokens_cap=LONG, poll_interval=0, top_k=1)
    with uvicorn_in_thread(app) as url:
        yield url, app.state.serve


STEP_S = 0.01  # each decode step is held this long, so LONG tokens take 3 s whatever the machine's speed


@pytest.fixture
def paced(app_server, monkeypatch):
    """The backend's decode steps slowed to STEP_S each: whether a disconnect is noticed before LONG / 2
    tokens then depends on the server's polling (0.1 s), not on how fast this machine runs the model."""
    backend = app_server[1].backend
    step = backend._step

    def paced_step(batch):
        time.sleep(STEP_S)
        return step(batch)

    monkeypatch.setattr(backend, "_step", paced_step)
    return app_server


def wait_idle(state, timeout: float = 60.0) -> None:
    """Until the backend has generated nothing for a moment (the abandoned row has left the batch)."""
    deadline, last = time.monotonic() + timeout, -1
    while last != state.backend.tokens_generated:
        last = state.backend.tokens_generated
        time.sleep(0.3)
        assert time.monotonic() < deadline


def body(model: str, stream: bool) -> dict:
    return {
        "model": model,
        "stream": stream,
        "max_tokens": LONG,
        "messages": [{"role": "user", "content": "What is the capital of Avalon?"}],
    }


def cancelled(url: str) -> float:
    line = next(
        x
        for x in httpx.get(f"{url}/metrics").text.splitlines()
        if x.startswith("ragtune_requests_cancelled_total")
    )
    return float(line.split()[-1])


def test_closing_a_stream_stops_its_generation(paced, model_id):
    url, state = paced
    wait_idle(state)
    before, n_cancelled = state.backend.tokens_generated, cancelled(url)
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body(model_id, True), timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content": ""' not in line and line.startswith("data: {"):
                break  # the first generated text: now hang up
    wait_idle(state)
    spent = state.backend.tokens_generated - before
    assert 0 < spent < LONG / 2
    assert cancelled(url) == n_cancelled + 1


def test_a_non_streaming_client_that_times_out_cancels_too(paced, model_id):
    url, state = paced
    wait_idle(state)
    before, n_cancelled = state.backend.tokens_generated, cancelled(url)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{url}/v1/chat/completions", json=body(model_id, False), timeout=httpx.Timeout(60, read=0.05)
        )
    wait_idle(state)
    assert state.backend.tokens_generated - before < LONG / 2
    assert cancelled(url) == n_cancelled + 1
