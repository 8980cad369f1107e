"""The other endpoints, auth, and bad input → OpenAI-style 4xx error objects (never a 500)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from serve_helpers import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
Q = [{"role": "user", "content": "What is the capital of Avalon?"}]


def post(server, path, body, headers=AUTH, raw: bytes | None = None):
    h = {"content-type": "application/json", **headers}
    return httpx.post(
        f"{server.url}{path}", content=raw if raw is not None else json.dumps(body), headers=h, timeout=60
    )


# (name, body or raw bytes, status, param, code)
BAD = [
    ("malformed json", b'{"model": "x", "messages": [', 400, None, "invalid_json"),
    ("body not an object", b"[1, 2]", 400, None, None),
    ("messages wrong type", {"messages": "hello"}, 400, "messages", "invalid_value"),
    ("max_tokens wrong type", {"messages": Q, "max_tokens": "ten"}, 400, "max_tokens", "invalid_value"),
    ("temperature out of range", {"messages": Q, "temperature": 5}, 400, "temperature", "invalid_value"),
    ("empty messages", {"messages": []}, 400, "messages", "invalid_value"),
    (
        "unknown role",
        {"messages": [{"role": "wizard", "content": "x"}]},
        400,
        "messages.0.role",
        "invalid_value",
    ),
    ("five stop sequences", {"messages": Q, "stop": list("abcde")}, 400, "stop", "invalid_value"),
    ("top_k wrong type", {"messages": Q, "top_k": "many"}, 400, "top_k", "invalid_value"),
    (
        "no user message",
        {"messages": [{"role": "system", "content": "x"}]},
        400,
        "messages",
        "no_user_message",
    ),
    ("empty question", {"messages": [{"role": "user", "content": "  "}]}, 400, "messages", "empty_question"),
    ("unknown model", {"model": "gpt-9", "messages": Q}, 404, "model", "model_not_found"),
    ("max_tokens over cap", {"messages": Q, "max_tokens": 65}, 400, "max_tokens", "max_tokens_over_cap"),
]


@pytest.mark.parametrize("name,body,status,param,code", BAD, ids=[b[0] for b in BAD])
def test_bad_chat_requests_get_openai_error_objects(server, model_id, name, body, status, param, code):
    if isinstance(body, dict):
        body = {"model": model_id, **body}
        r = post(server, "/v1/chat/completions", body)
    else:
        r = post(server, "/v1/chat/completions", None, raw=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["param"] == param
    if code:
        assert err["code"] == code


# OpenAI fields this server does not implement: (field, value). Each is a 400 naming the field, never ignored.
UNSUPPORTED = [
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]),
    ("tool_choice", "auto"),
    ("functions", [{"name": "f", "parameters": {"type": "object"}}]),
    ("function_call", {"name": "f"}),
    ("response_format", {"type": "json_object"}),
    ("logprobs", True),
    ("top_logprobs", 2),
    ("n", 2),
]


@pytest.mark.parametrize("field,value", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_fields_are_refused_by_name(client, model_id, field, value):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model_id, messages=Q, max_tokens=2, extra_body={field: value})
    err = e.value.body
    assert err["message"].startswith(f"`{field}` is not supported by this server; ")
    assert (err["param"], err["code"]) == (field, "unsupported_parameter")


def test_the_harmless_values_of_unsupported_fields_still_answer(client, model_id):
    r = client.chat.completions.create(
        model=model_id,
        messages=Q,
        max_tokens=2,
        n=1,
        logprobs=False,
        tools=[],
        tool_choice="none",
        response_format={"type": "text"},
    )
    assert r.choices[0].finish_reason == "length" and r.model_extra["sources"]


def test_openapi_marks_the_unsupported_fields(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    fields = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    for field, _ in UNSUPPORTED:
        assert "Not supported by this server" in fields[field]["description"], field


def test_prompt_over_the_context_is_400_with_both_counts(client, model_id):
    long = " ".join(["Brightwater"] * 600)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": long}], max_tokens=4
        )
    msg = e.value.body["message"]
    assert e.value.body["code"] == "context_length_exceeded"
    n_prompt = int(msg.split("the prompt has ")[1].split(" tokens")[0])
    assert n_prompt > 512 and "context is 512 tokens" in msg


def test_prompt_plus_max_tokens_over_the_context_is_400(client, model_id):
    text = " ".join(["Brightwater"] * 220)  # ~ 460 prompt tokens with the passages, + 64 > 512
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": text}], max_tokens=64
        )
    assert "ask for at most" in e.value.body["message"]


def test_body_over_the_size_limit_is_413(server):
    huge = b'{"messages": "' + b"x" * 1_100_000 + b'"}'
    r = post(server, "/v1/chat/completions", None, raw=huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_unknown_route_is_a_shaped_404(server):
    r = httpx.get(f"{server.url}/v1/nope", headers=AUTH)
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/retrieve"),
        ("GET", "/v1/index"),
        ("POST", "/v1/index/reload"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}],
    ids=["none", "wrong", "no-scheme"],
)
def test_v1_and_admin_routes_need_the_key(server, method, path, headers):
    r = httpx.request(method, f"{server.url}{path}", headers=headers, json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_openai_client_with_a_wrong_key_gets_401(server, model_id):
    with (
        openai.OpenAI(base_url=server.base_url, api_key="nope", max_retries=0) as c,
        pytest.raises(openai.AuthenticationError),
    ):
        c.chat.completions.create(model=model_id, messages=Q)


def test_models_retrieve_index_and_reload(client, server, model_id):
    models = client.models.list().data
    assert [m.id for m in models] == [model_id] and models[0].owned_by == "ragtune"
    r = post(server, "/v1/retrieve", {"query": "Who founded Brightwater?", "top_k": 2}).json()
    assert r["index_version"] == "v000001" and next(s["doc_id"] for s in r["data"]) == "founder"
    info = httpx.get(f"{server.url}/v1/index", headers=AUTH).json()
    assert info["version"] == "v000001" and info["counts"]["documents"] == 5 and info["counts"]["chunks"] == 5
    assert info["encoder"]["dimension"] == 384 and info["encoder"]["model"] == "all-MiniLM-L6-v2"
    reload = post(server, "/v1/index/reload", {}).json()
    assert reload == {"changed": False, "version": "v000001", "previous": None, "error": None}


def test_health_ready_and_metrics_need_no_key(server, client, model_id):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert (
        ready["status"] == "ready"
        and ready["index_version"] == "v000001"
        and ready["backend"] == "transformers"
    )
    client.chat.completions.create(model=model_id, messages=Q, max_tokens=3)
    text = httpx.get(f"{server.url}/metrics").text
    assert 'ragtune_index_version{version="v000001"} 1.0' in text
    assert 'ragtune_requests_total{route="/v1/chat/completions",status="200"}' in text
    for name in (
        "ragtune_request_latency_seconds_bucket",
        "ragtune_retrieval_seconds_count",
        "ragtune_completion_tokens_total",
        "ragtune_prompt_tokens_total",
        "ragtune_batch_size_count",
    ):
        assert name in text


def _status_cases():
    from serve.admission import Overloaded
    from serve.errors import APIError
    from serve.types import BackendError, GenerationFailed, UpstreamFailed

    return [
        (GenerationFailed("the local engine failed"), 500),
        (UpstreamFailed("the remote server died"), 502),
        (UpstreamFailed("the remote server refused", 400), 400),  # its 4xx is passed on
        (BackendError("a backend failed"), 502),
        (APIError(404, "no such model"), 404),
        (Overloaded(429, "the queue is full", "queue_full", retry_after=1), 429),
        (ValueError("a bug"), 500),
    ]


def test_one_exception_status_table():
    """serve/errors.py's status_for answers every handler and every in-band stream error."""
    from serve.errors import status_for

    for exc, status in _status_cases():
        assert status_for(exc) == status, exc
