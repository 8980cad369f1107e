"""The openai backend, for real: a gateway whose generation is done by a second ragtune server process."""

from __future__ import annotations

import openai
import pytest
from serve_helpers import API_KEY, uvicorn_in_thread

Q = [{"role": "user", "content": "Who founded Brightwater?"}]


@pytest.fixture(scope="module")
def gateway(server, chatty_generator, index_dir):
    """Retrieval + prompt here; generation by `server` (the `ragtune serve` subprocess) over HTTP."""
    from serve import create_app

    app = create_app(
        model=chatty_generator,
        index=index_dir,
        backend="openai",
        openai_base_url=server.base_url,
        openai_api_key=API_KEY,
        api_key="gateway-key",
        poll_interval=0,
    )
    with (
        uvicorn_in_thread(app) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="gateway-key", max_retries=0, timeout=60) as c,
    ):
        yield c


@pytest.mark.parametrize(
    "extra", [{}, {"top_k": 1}, {"retrieval": False}], ids=["rag", "top1", "closed-book"]
)
def test_gateway_answers_exactly_like_the_direct_server(gateway, client, model_id, extra):
    kw = {"model": model_id, "messages": Q, "max_tokens": 10, "extra_body": extra}
    direct, via = client.chat.completions.create(**kw), gateway.chat.completions.create(**kw)
    assert via.choices[0].message.content == direct.choices[0].message.content
    assert via.choices[0].finish_reason == direct.choices[0].finish_reason
    assert via.usage.model_dump() == direct.usage.model_dump()
    assert via.model_extra["sources"] == direct.model_extra["sources"]


def test_gateway_streams(gateway, client, model_id):
    kw = {"model": model_id, "messages": Q, "max_tokens": 10}
    direct = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(gateway.chat.completions.create(**kw, stream=True))
    assert chunks[0].model_extra["sources"][0]["doc_id"] == "founder"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == direct


def test_remote_refusal_comes_back_as_a_4xx(gateway, model_id):
    # The gateway allows 1024 tokens, the remote server only 64: the remote's 400 is passed on, not a 500.
    with pytest.raises(openai.BadRequestError) as e:
        gateway.chat.completions.create(model=model_id, messages=Q, max_tokens=100)
    assert "remote server refused" in e.value.body["message"] and "at most 64" in e.value.body["message"]


def test_load_generator_over_the_openai_backend(server, chatty_generator, client, model_id):
    from ragtune.prompt import build_messages
    from serve import load_generator

    msgs = build_messages("Who founded Brightwater?")
    gen = load_generator(
        chatty_generator, backend="openai", openai_base_url=server.base_url, openai_api_key=API_KEY
    )
    try:
        [c] = gen.generate([msgs], max_tokens=6)
    finally:
        gen.close()
    direct = client.chat.completions.create(
        model=model_id, messages=msgs, max_tokens=6, extra_body={"raw_prompt": True}
    )
    assert (c.text, c.completion_tokens, c.prompt_tokens) == (
        direct.choices[0].message.content,
        direct.usage.completion_tokens,
        direct.usage.prompt_tokens,
    )
