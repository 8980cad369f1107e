"""Issue 14, bounded load: queue, per-key and prompt-token limits answer 429 with Retry-After over real HTTP,
each refusal is counted in /metrics, and every way a request ends gives its slot back. Also: no JSON answer
holds a server path.

The backend's decode steps pass only with a permit from the test (`steps`), so a request stays admitted
exactly as long as the test wants, whatever the machine's speed; waits are bounded polls of /metrics.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from serve_helpers import run_ragtune, uvicorn_in_thread

from serve.admission import REASONS, AdmissionLimits

WAIT_S = 120.0  # bound on every wait: far above what any step needs, only hit when something is broken
QUESTION = "What is the capital of Avalon?"


class Steps:
    """Permits for the backend's decode steps: none until the test allows some, unlimited once opened."""

    def __init__(self):
        self.permits = threading.Semaphore(0)
        self.fail = False

    def allow(self, n: int = 1) -> None:
        self.permits.release(n)

    def open(self) -> None:
        self.permits.release(1_000_000)


@pytest.fixture(scope="module")
def app_server(chatty_generator, index_dir):
    from serve import create_app

    app = create_app(model=chatty_generator, index=index_dir, max_tokens_cap=300, poll_interval=0, top_k=1)
    with uvicorn_in_thread(app) as url:
        yield url, app.state.serve


@pytest.fixture
def held(app_server, monkeypatch):
    """The server with gated decode steps; at the end all steps pass and every slot must be free again."""
    url, state = app_server
    steps, step = Steps(), state.backend._step

    def gated_step(batch):
        if not steps.permits.acquire(timeout=WAIT_S):
            raise TimeoutError("the test never let this decode step pass")
        if steps.fail:
            raise RuntimeError("backend broke (planted by the test)")
        return step(batch)

    monkeypatch.setattr(state.backend, "_step", gated_step)
    pool = ThreadPoolExecutor(8)
    try:
        yield url, state, steps, pool
    finally:
        steps.open()
        pool.shutdown(wait=True)
        until(lambda: gauge(url, "ragtune_admitted_requests") == 0, "slots freed at the end")


# --- helpers -----------------------------------------------------------------------------------------------
def scrape(url: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=WAIT_S).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def gauge(url: str, name: str) -> float:
    return scrape(url)[(name, ())]


def rejected(url: str) -> dict[str, float]:
    m = scrape(url)
    return {r: m[("ragtune_requests_rejected_total", (("reason", r),))] for r in REASONS}


def until(check, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def chat(url: str, model: str, key: str = "k", content: str = QUESTION, **extra) -> httpx.Response:
    body = {"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": content}], **extra}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=WAIT_S)


def hold(url: str, pool, model: str, keys: list[str], **extra) -> list[Future]:
    """Send one request per key and return once all hold a slot (their decode steps wait for permits)."""
    start = gauge(url, "ragtune_admitted_requests")
    futures = [pool.submit(chat, url, model, k, **extra) for k in keys]
    until(lambda: gauge(url, "ragtune_admitted_requests") == start + len(keys), f"{len(keys)} admitted")
    return futures


def refused_with_openai(url: str, model: str, key: str, content: str = QUESTION) -> openai.APIStatusError:
    """The official client's view of a refusal (no retries, so the first answer is what we see)."""
    with (
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=WAIT_S) as client,
        pytest.raises(openai.APIStatusError) as info,
    ):
        client.chat.completions.create(
            model=model, max_tokens=2, messages=[{"role": "user", "content": content}]
        )
    return info.value


def assert_error_shape(r: httpx.Response, code: str, flag: str) -> None:
    err = r.json()["error"]
    assert err["code"] == code and err["type"] in ("rate_limit_error", "invalid_request_error")
    assert flag in err["message"], err["message"]  # says which limit, so the operator knows what to raise


# --- queue and per-key limits --------------------------------------------------------------------------------
# (name, limits, keys holding a slot, key of one more request, its status, reason counted)
SLOTS = [
    ("queue full", AdmissionLimits(max_queue=2), ["a", "b"], "c", 429, "queue_full"),
    ("queue has room", AdmissionLimits(max_queue=3), ["a", "b"], "c", 200, None),
    ("key busy", AdmissionLimits(max_queue=8, max_per_key=1), ["a"], "a", 429, "key_busy"),
    ("another key passes", AdmissionLimits(max_queue=8, max_per_key=1), ["a"], "b", 200, None),
    (
        "key at its limit of 2",
        AdmissionLimits(max_queue=8, max_per_key=2),
        ["a", "b", "a"],
        "a",
        429,
        "key_busy",
    ),
]
FLAGS = {"queue_full": "--max-queue", "key_busy": "--max-concurrent-per-key"}


@pytest.mark.parametrize("name,limits,keys,key,status,reason", SLOTS, ids=[s[0] for s in SLOTS])
def test_one_request_beyond_a_limit_is_429_with_retry_after(
    held, model_id, monkeypatch, name, limits, keys, key, status, reason
):
    url, state, steps, pool = held
    monkeypatch.setattr(state.admission, "limits", limits)
    before = rejected(url)
    futures = hold(url, pool, model_id, keys)
    if status == 429:
        err = refused_with_openai(url, model_id, key)
        assert isinstance(err, openai.RateLimitError)
        assert int(err.response.headers["retry-after"]) >= 1
        assert_error_shape(err.response, reason, FLAGS[reason])
        extra = []
    else:
        extra = hold(url, pool, model_id, [key])
    steps.open()
    assert [f.result().status_code for f in futures + extra] == [200] * (len(futures) + len(extra))
    assert rejected(url) == {r: n + (r == reason) for r, n in before.items()}


# --- prompt tokens -------------------------------------------------------------------------------------------
FILLER = " Tell me everything about its rivers, founders and bakers."
LONG, HUGE = QUESTION + FILLER * 4, QUESTION + FILLER * 8  # ~220 and ~360 tokens, within a 512 context


def prompt_tokens(url: str, model: str, content: str) -> int:
    r = chat(url, model, content=content, max_tokens=1, retrieval=False)
    assert r.status_code == 200, r.text
    return r.json()["usage"]["prompt_tokens"]


def test_long_prompts_count_by_tokens(held, model_id, monkeypatch):
    url, state, steps, pool = held
    steps.open()
    short_n, long_n, huge_n = (prompt_tokens(url, model_id, c) for c in (QUESTION, LONG, HUGE))
    budget = long_n + short_n - 1  # the long prompt fits alone but not next to a short one; two shorts do
    assert 2 * short_n <= budget < huge_n
    steps.permits = threading.Semaphore(0)  # closed again
    monkeypatch.setattr(state.admission, "limits", AdmissionLimits(max_prompt_tokens=budget))
    before = rejected(url)

    futures = hold(url, pool, model_id, ["a", "b"], retrieval=False)  # two short prompts pass
    assert gauge(url, "ragtune_admitted_prompt_tokens") == 2 * short_n
    r = chat(url, model_id, key="c", content=LONG, retrieval=False)  # does not fit now: retry later
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert_error_shape(r, "token_budget", "--max-queued-prompt-tokens")
    huge = chat(url, model_id, key="c", content=HUGE, retrieval=False)  # never fits: 413, not retried
    assert huge.status_code == 413 and "retry-after" not in huge.headers
    assert_error_shape(huge, "prompt_over_budget", "--max-queued-prompt-tokens")

    steps.open()
    assert [f.result().status_code for f in futures] == [200, 200]
    counted = {"token_budget": 1, "prompt_over_budget": 1}
    assert rejected(url) == {r: n + counted.get(r, 0) for r, n in before.items()}
    until(lambda: gauge(url, "ragtune_admitted_prompt_tokens") == 0, "token budget given back")


# --- every way a request ends frees its slot ------------------------------------------------------------------
def finish(url, model, steps):
    steps.open()
    assert chat(url, model).status_code == 200


def finish_streaming(url, model, steps):
    steps.open()
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json={
            "model": model,
            "max_tokens": 2,
            "stream": True,
            "messages": [{"role": "user", "content": QUESTION}],
        },
        timeout=WAIT_S,
    ) as r:
        assert r.status_code == 200 and r.read().decode().rstrip().endswith("[DONE]")


def refuse_field(url, model, steps):  # admitted, then a 400 while building the turn
    r = chat(url, model, tools=[{"type": "function", "function": {"name": "f"}}])
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_parameter"


def backend_fails(url, model, steps):
    steps.fail = True
    steps.open()
    r = chat(url, model)
    assert r.status_code >= 500 and "planted by the test" in r.json()["error"]["message"]


def hang_up(url, model, steps):  # a non-streaming client that stops waiting; the generation never ends
    with pytest.raises(httpx.ReadTimeout):
        body = {"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": QUESTION}]}
        headers = {"Authorization": "Bearer k"}
        httpx.post(
            f"{url}/v1/chat/completions", json=body, headers=headers, timeout=httpx.Timeout(WAIT_S, read=0.5)
        )


def hang_up_streaming(url, model, steps):  # reads the first chunk, then leaves; no further step passes
    body = {
        "model": model,
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    first_chunk = threading.Event()

    def feed():  # one decode step at a time until the first text is out (a step may emit none)
        deadline = time.monotonic() + WAIT_S
        while not first_chunk.is_set() and time.monotonic() < deadline:
            steps.allow(1)
            first_chunk.wait(0.05)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=WAIT_S) as r:
        assert r.status_code == 200
        assert next(r.iter_lines()).startswith("data: {")
        first_chunk.set()
    feeder.join()


ENDINGS = [finish, finish_streaming, refuse_field, backend_fails, hang_up, hang_up_streaming]


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.__name__ for e in ENDINGS])
def test_every_ending_frees_the_slot(held, model_id, ending):
    url, state, steps, _pool = held
    assert gauge(url, "ragtune_admitted_requests") == 0
    cancelled = scrape(url)[("ragtune_requests_cancelled_total", ())]
    ending(url, model_id, steps)
    # for hang-ups the decode steps are still held back: only the disconnect can have freed the slot
    until(lambda: gauge(url, "ragtune_admitted_requests") == 0, f"slot freed after {ending.__name__}")
    if ending.__name__.startswith("hang_up"):  # ended by the disconnect, not by finishing
        assert scrape(url)[("ragtune_requests_cancelled_total", ())] == cancelled + 1
    assert gauge(url, "ragtune_admitted_prompt_tokens") == 0
    assert state.admission.per_key == {}


# --- settings, flags ------------------------------------------------------------------------------------------
def test_settings_reach_the_gate(chatty_generator):
    from serve import create_app

    app = create_app(
        model=chatty_generator, max_queue=3, max_concurrent_per_key=2, max_queued_prompt_tokens=500
    )
    assert app.state.serve.admission.limits == AdmissionLimits(3, 2, 500)
    defaults = create_app(model=chatty_generator).state.serve.admission.limits
    assert defaults == AdmissionLimits(max_queue=256, max_per_key=None, max_prompt_tokens=1_000_000)


@pytest.mark.parametrize("flag", ["--max-queue", "--max-concurrent-per-key", "--max-queued-prompt-tokens"])
def test_a_bad_limit_flag_is_one_clear_error(flag):
    r = run_ragtune("serve", flag, "0", "--port", "0")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert flag in r.stderr and "got 0" in r.stderr, r.stderr


# --- no server paths in answers ---------------------------------------------------------------------------------
def test_no_json_answer_holds_a_server_path(app_server, model_id, chatty_generator, index_dir):
    url, _ = app_server
    answers = [
        httpx.get(f"{url}/readyz", timeout=WAIT_S),
        httpx.get(f"{url}/v1/models", timeout=WAIT_S),
        httpx.get(f"{url}/v1/index", timeout=WAIT_S),
        httpx.post(f"{url}/v1/index/reload", timeout=WAIT_S),
        httpx.post(f"{url}/v1/retrieve", json={"query": QUESTION}, timeout=WAIT_S),
        chat(url, model_id),
        chat(url, model_id, stream=True),
        chat(url, "not-served"),
    ]
    private = [str(Path(index_dir).resolve().parent), str(Path(chatty_generator).resolve().parent)]
    for r in answers:
        assert r.status_code in (200, 404), r.text
        assert not any(p in r.text for p in private), r.text
    assert answers[2].json()["dir"] == Path(index_dir).name


def test_a_refused_index_version_is_reported_without_paths(index_dir, tmp_path):
    from serve.knowledge import KnowledgeHolder

    index = tmp_path / "kb"
    shutil.copytree(index_dir, index)
    (index / "CURRENT").write_text("not a version\n")

    async def refuse():
        holder = await asyncio.to_thread(KnowledgeHolder, index_dir, None, 0)
        holder.index_dir = index  # as if this folder had been served and then broken
        try:
            return await holder.reload()
        finally:
            await holder.aclose()

    error = asyncio.run(refuse())["error"]
    assert "kb" in error and str(tmp_path) not in error and "ragtune" in error, error
