"""A bounded schemathesis fuzz of every operation in /openapi.json: no input may produce a 5xx."""

from __future__ import annotations

import pytest
from serve_helpers import API_KEY

EXAMPLES = 25  # per operation; seeded (derandomized), so a run is reproducible


UNSUPPORTED = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "logprobs",
    "top_logprobs",
    "n",
)


def _with_valid_model(case, model_id: str, reach_generation: bool) -> bool:
    """Give a chat case the served model's name (a random one only ever reaches the 404) and a small
    max_tokens. With `reach_generation`, also drop the fields the server refuses (400, tested elsewhere) and
    end with a user question, so the fuzzed sampling fields reach retrieval, the prompt and generation.
    True when the case was changed."""
    if case.path != "/v1/chat/completions" or not isinstance(case.body, dict):
        return False
    case.body["model"] = model_id
    if isinstance(case.body.get("max_tokens"), int) and case.body["max_tokens"] > 8:
        case.body["max_tokens"] = 8
    if reach_generation:
        for name in UNSUPPORTED:
            case.body.pop(name, None)
        messages = case.body.get("messages") if isinstance(case.body.get("messages"), list) else []
        case.body["messages"] = [*messages, {"role": "user", "content": "What is the capital of Avalon?"}]
    return True


def test_no_input_gives_a_server_error(server, model_id):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    errors: list[str] = []
    chat_ok = []  # chat cases with the real model name that the server answered 200
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} >= {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/retrieve"),
        ("GET", "/v1/index"),
        ("GET", "/v1/models"),
    }
    chat = next(o for o in operations if o.path == "/v1/chat/completions")
    # every operation in every mode; then the chat path again with schema-valid bodies made to reach generation
    runs = [(op, list(schemathesis.GenerationMode), False) for op in operations]
    runs.append((chat, [schemathesis.GenerationMode.POSITIVE], True))
    for op, generation_modes, reach in runs:
        modes = st.sampled_from([op.as_strategy(generation_mode=m) for m in generation_modes])

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=modes.flatmap(lambda s: s))
        def check(case):
            valid_model = _with_valid_model(case, model_id, reach)  # noqa: B023 - bound per run
            response = case.call(base_url=server.url, headers=headers, timeout=60)
            if valid_model and response.status_code == 200:
                chat_ok.append(case.body)
            if response.status_code >= 500:
                errors.append(
                    f"{case.method} {case.path} {case.body!r:.200} -> {response.status_code} "
                    f"{response.text[:200]}"
                )

        check()
    assert errors == []
    assert len(chat_ok) >= EXAMPLES // 2, "fuzzed chat requests did not reach generation"


ODD_BODIES = [
    b'{"model": 1, "messages": [{"role": "user", "content": "x"}]}',
    b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image"}]}]}',
    b'{"model": "M", "messages": [{"role": "user", "content": "\\u0000\\ud800 lone surrogate"}], "seed": -1}',
    b'{"model": "M", "messages": [{"role": "user", "content": "x"}], "stop": "", "max_tokens": 1}',
    b'{"model": "M", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e400}',
    b'{"query": null}',
    b'{"query": "\\ud800"}',
    b"\xff\xfe not utf-8",
]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_odd_bodies_are_not_5xx(server, model_id, body):
    import httpx

    body = body.replace(b'"M"', f'"{model_id}"'.encode())
    for path in ("/v1/chat/completions", "/v1/retrieve"):
        r = httpx.post(
            f"{server.url}{path}",
            content=body,
            timeout=60,
            headers={"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
        )
        assert r.status_code < 500, r.text
