"""Live index refresh: re-ingest while requests stream; a mismatched encoder is refused; rollback is seen."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from openai import OpenAI
from serve_helpers import DOCS, uvicorn_in_thread, write_docs

CHANGED = "The capital of Avalon is Moonhaven since the great move. Moonhaven lies on the Glass Sea."
QUESTION = "What is the capital of Avalon?"


@pytest.fixture(scope="module")
def live(module_tmp, chatty_generator, encoder):
    """An in-thread uvicorn server over its own index (version v000001), polling CURRENT every 0.3 s."""
    from ingest import ingest
    from serve import create_app

    root = module_tmp("refresh")
    index = root / "index"
    ingest([write_docs(root / "docs.jsonl", DOCS)], index, encoder=encoder, show_progress=False)
    app = create_app(model=chatty_generator, index=index, poll_interval=0.3, max_tokens_cap=64)
    with uvicorn_in_thread(app) as url:
        yield {"url": url, "index": index, "root": root}


def wait_until(done: Callable[[], bool], what: Callable[[], str], timeout: float = 60.0) -> None:
    """Poll `done` until it holds; after `timeout` seconds fail, saying what was awaited and what was seen."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"gave up after {timeout:.0f} s waiting for {what()}"
        time.sleep(0.05)


def wait_for_version(url: str, version: str, timeout: float = 60.0) -> None:
    def now() -> str:
        return httpx.get(f"{url}/v1/index").json()["version"]

    wait_until(
        lambda: now() == version, lambda: f"the server to move to {version} (it serves {now()})", timeout
    )


def ask(client: OpenAI, model: str) -> dict:
    """One streamed answer; returns its sources, index version and text (raises on any failure)."""
    first, text, done = None, [], None
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        stream=True,
        extra_body={"top_k": 2},
    ):
        first = first or chunk
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            done = chunk.choices[0].finish_reason or done
    assert done in ("stop", "length")
    return {
        "version": first.model_extra["index_version"],
        "sources": first.model_extra["sources"],
        "text": "".join(text),
    }


def test_refresh_while_streaming_loses_no_request(live, encoder, model_id):
    from ingest import ingest

    client = OpenAI(base_url=f"{live['url']}/v1", api_key="none", max_retries=0, timeout=60)
    results: list[tuple[float, dict]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                results.append((time.monotonic(), ask(client, model_id)))
            except BaseException as e:  # noqa: BLE001 - collected and asserted below: any failure fails the test
                failures.append(e)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        wait_until(
            lambda: len(results) >= 4,
            lambda: f"4 answers before the refresh (got {len(results)}; failures: {failures[:3]})",
        )
        changed = [dict(d, text=CHANGED) if d["id"] == "avalon" else d for d in DOCS]
        report = ingest(
            [write_docs(live["root"] / "docs.jsonl", changed)],
            live["index"],
            encoder=encoder,
            show_progress=False,
        )
        assert report.version == "v000002"
        wait_for_version(live["url"], "v000002")
        swapped_at = time.monotonic()

        def late() -> list[dict]:
            return [r for t, r in results if t > swapped_at + 0.5]

        wait_until(
            lambda: len(late()) >= 8,
            lambda: f"8 answers after the swap (got {len(late())}; failures: {failures[:3]})",
        )
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert failures == []
    before = [r for t, r in results if r["version"] == "v000001"]
    after = [r for t, r in results if t > swapped_at + 0.5]
    assert before and before[0]["sources"][0]["snippet"].startswith("The capital of Avalon is Brightwater")
    assert all(r["version"] == "v000002" for r in after)
    assert all(
        r["sources"][0]["doc_id"] == "avalon" and "Moonhaven" in r["sources"][0]["snippet"] for r in after
    )
    metrics = httpx.get(f"{live['url']}/metrics").text
    assert 'ragtune_index_version{version="v000002"} 1.0' in metrics
    assert 'ragtune_index_reloads_total{result="swapped"} 1.0' in metrics


def test_mismatched_encoder_is_refused_and_rollback_is_picked_up(live, model_id):
    from retriever import rollback
    from retriever.versions import publish, version_dir

    index, url = live["index"], live["url"]
    wait_for_version(url, "v000002")
    bad = version_dir(index, "v000003")
    shutil.copytree(version_dir(index, "v000002"), bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["encoder"]["weights_sha256"] = "0" * 64  # as if built by another retriever
    (bad / "manifest.json").write_text(json.dumps(manifest))
    publish(index, "v000003")
    r = httpx.post(f"{url}/v1/index/reload").json()
    assert r["changed"] is False and r["version"] == "v000002"
    assert "v000003 refused" in r["error"] and "ragtune ingest" in r["error"]
    info = httpx.get(f"{url}/v1/index").json()
    assert info["version"] == "v000002" and info["last_refused"]["version"] == "v000003"
    client = OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    assert ask(client, model_id)["version"] == "v000002"  # the old version keeps serving

    rollback(index, "v000001")
    wait_for_version(url, "v000001")  # by polling, without a reload call
    answer = ask(client, model_id)
    assert answer["version"] == "v000001" and "Brightwater" in answer["sources"][0]["snippet"]
    assert httpx.get(f"{url}/v1/index").json()["last_refused"] is None
