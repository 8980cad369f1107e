"""A bounded schemathesis fuzz of every operation in /openapi.json: no input may produce a 5xx."""

from __future__ import annotations

import pytest
from serve_helpers import API_KEY

EXAMPLES = 25  # per operation; seeded (derandomized), so a run is reproducible


def test_no_input_gives_a_server_error(server):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    errors: list[str] = []
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} >= {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/retrieve"),
        ("GET", "/v1/index"),
        ("GET", "/v1/models"),
    }
    for op in operations:
        modes = st.sampled_from([op.as_strategy(generation_mode=m) for m in schemathesis.GenerationMode])

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=modes.flatmap(lambda s: s))
        def check(case):
            response = case.call(base_url=server.url, headers=headers, timeout=60)
            if response.status_code >= 500:
                errors.append(
                    f"{case.method} {case.path} {case.body!r:.200} -> {response.status_code} "
                    f"{response.text[:200]}"
                )

        check()
    assert errors == []


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
