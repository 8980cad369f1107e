"""Issue 25's serve leftovers: OpenAI sampling fields the server cannot honour are a 400 naming the field
(through the official openai client), /v1/retrieve holds a slot under the chat's load limits, and neither
`ragtune serve` nor `ragtune ingest` prints transformers' "Loading weights" bars."""

from __future__ import annotations

import httpx
import openai
import pytest
from serve_helpers import DOCS, run_ragtune, uvicorn_in_thread, write_docs

from serve.admission import AdmissionLimits

# (field, a value the server refuses, a neutral value it accepts or None when leaving it out is the only one)
REFUSED = [
    ("presence_penalty", 0.5, 0.0),
    ("frequency_penalty", -1.0, 0.0),
    ("logit_bias", {"42": 10}, {}),
    ("audio", {"voice": "alloy", "format": "wav"}, None),
    ("modalities", ["text", "audio"], ["text"]),
    ("web_search_options", {}, None),
    ("reasoning_effort", "low", None),
    ("verbosity", "low", None),
]


@pytest.mark.parametrize("field,bad,neutral", REFUSED, ids=[r[0] for r in REFUSED])
def test_unhonoured_sampling_fields_are_a_400_naming_them(client, model_id, field, bad, neutral):
    base = {"model": model_id, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**base, **{field: bad})
    err = e.value.body
    assert err["param"] == field and err["code"] == "unsupported_parameter", err
    assert f"`{field}` is not supported" in err["message"]
    if neutral is not None:  # the value that changes nothing passes
        r = client.chat.completions.create(**base, **{field: neutral})
        assert r.choices[0].message.content is not None


def test_answer_neutral_fields_are_accepted(client, model_id):
    r = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=2,
        metadata={"team": "a"},
        store=False,
        service_tier="auto",
        user="u1",
    )
    assert r.choices[0].finish_reason in ("stop", "length")


@pytest.fixture(scope="module")
def app_server(chatty_generator, index_dir):
    from serve import create_app

    app = create_app(model=chatty_generator, index=index_dir, poll_interval=0, top_k=1)
    with uvicorn_in_thread(app) as url:
        yield url, app.state.serve


def test_retrieve_takes_a_slot_under_the_chat_limits(app_server, monkeypatch):
    url, state = app_server
    monkeypatch.setattr(state.admission, "limits", AdmissionLimits(max_queue=2))
    body = {"query": "What is the capital of Avalon?", "top_k": 1}
    assert httpx.post(f"{url}/v1/retrieve", json=body, timeout=60).status_code == 200
    held = [state.admission.admit(k) for k in ("a", "b")]  # two chats in progress: the queue is full
    try:
        r = httpx.post(f"{url}/v1/retrieve", json=body, timeout=60)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "queue_full" and "--max-queue" in r.json()["error"]["message"]
    finally:
        for t in held:
            t.release()
    r = httpx.post(f"{url}/v1/retrieve", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["data"][0]["doc_id"] == "avalon"
    assert state.admission.admitted == 0  # the searches gave their slots back


def test_no_loading_weights_bars(server, tmp_path):
    assert "Loading weights" not in server.log()  # `ragtune serve` loaded its model
    docs = write_docs(tmp_path / "docs.jsonl", DOCS)
    r = run_ragtune("ingest", str(docs), "--index", str(tmp_path / "index"))
    assert r.returncode == 0, r.stderr
    assert "Loading weights" not in r.stderr + r.stdout
