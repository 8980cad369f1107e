"""POST /v1/feedback against a real `ragtune serve --feedback-db` on loopback, and the SQLite file it writes:
every answer stored with what it was given, every 2xx rating committed (it survives kill -9 and a restart),
bad input a 4xx naming the field with nothing stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from serve_helpers import API_KEY

from ragtune.feedback import SCHEMA_VERSION, open_feedback

QUESTION = "Who founded Brightwater?"


def _start(model, index, db):
    from serve import start_server

    return start_server(
        model,
        index,
        api_key=API_KEY,
        extra_args=["--max-tokens-cap", "16", "--poll-interval", "0", "--feedback-db", str(db)],
    )


def _rate(url: str, body: dict, key: str | None = API_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/feedback", json=body, headers=headers, timeout=60)


def _rows(db) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT response_id, rating, correction, note FROM feedback ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def fb_server(chatty_generator, index_dir, module_tmp):
    db = module_tmp("feedback") / "feedback.db"
    handle = _start(chatty_generator, index_dir, db)
    try:
        yield handle, db, _ask(handle, Path(chatty_generator).name)[0]
    finally:
        handle.stop()


def _ask(handle, model_id: str, stream: bool = False) -> tuple[str, str, dict]:
    """(completion id, answer text, the non-streamed response's extras) through the official client."""
    from openai import OpenAI

    with OpenAI(base_url=handle.base_url, api_key=API_KEY, max_retries=0, timeout=60) as client:
        msgs = [{"role": "user", "content": QUESTION}]
        if stream:
            text, rid = "", None
            for chunk in client.chat.completions.create(
                model=model_id, messages=msgs, max_tokens=8, stream=True
            ):
                rid = chunk.id
                text += "".join(c.delta.content or "" for c in chunk.choices)
            return rid, text, {}
        r = client.chat.completions.create(model=model_id, messages=msgs, max_tokens=8)
        return r.id, r.choices[0].message.content, r.model_extra


def test_answers_and_ratings_are_stored_and_survive_kill_9_and_a_restart(
    chatty_generator, index_dir, model_id, tmp_path
):
    db = tmp_path / "fb.db"
    handle = _start(chatty_generator, index_dir, db)
    try:
        rid, text, extra = _ask(handle, model_id)
        sid, stext, _ = _ask(handle, model_id, stream=True)
        down = _rate(handle.url, {"response_id": rid, "rating": "down", "correction": "Mara Quill"})
        up = _rate(handle.url, {"response_id": sid, "rating": "up", "note": "fine"})
        assert down.status_code == 200 and up.status_code == 200, (down.text, up.text)
        assert down.json()["response_id"] == rid and down.json()["stored"] is True
    finally:
        handle.proc.kill()  # kill -9: no shutdown code runs
        handle.proc.wait(10)

    store = open_feedback(db, must_exist=True)
    assert store.integrity() == "ok"
    rows = list(store.feedback())
    assert [(r.answer.id, r.rating, r.correction, r.note) for r in rows] == [
        (rid, "down", "Mara Quill", None),
        (sid, "up", None, "fine"),
    ]
    first = rows[0].answer
    assert first.question == QUESTION and first.answer == text and rows[1].answer.answer == stext
    assert first.model == model_id and first.index_version == extra["index_version"]
    assert [p["chunk_id"] for p in first.passages] == [s["chunk_id"] for s in extra["sources"]]
    assert first.passages and all(p["text"] for p in first.passages)  # whole passages, not snippets
    assert first.request_messages == [{"role": "user", "content": QUESTION}]
    assert first.prompt_messages[-1]["role"] == "user" and QUESTION in first.prompt_messages[-1]["content"]
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()

    again = _start(chatty_generator, index_dir, db)  # a restarted server still knows the old answers
    try:
        r = _rate(again.url, {"response_id": rid, "rating": "up"})
        assert r.status_code == 200, r.text
    finally:
        again.stop()
    assert len(_rows(db)) == 3


BAD = [  # (body, key, status, the field the error names)
    ({"response_id": "chatcmpl-nope", "rating": "down"}, API_KEY, 404, "response_id"),
    ({"response_id": "ID", "rating": "meh"}, API_KEY, 400, "rating"),
    ({"response_id": "ID", "rating": "down", "correction": "x" * 4001}, API_KEY, 400, "correction"),
    ({"response_id": "ID", "rating": "down", "note": 3}, API_KEY, 400, "note"),
    ({"rating": "down"}, API_KEY, 400, "response_id"),
    ({"response_id": "ID", "rating": "up"}, None, 401, None),
    ({"response_id": "ID", "rating": "up"}, "wrong-key", 401, None),
]


@pytest.mark.parametrize(("body", "key", "status", "param"), BAD)
def test_bad_feedback_is_a_4xx_naming_the_field_and_stores_nothing(
    fb_server, model_id, body, key, status, param
):
    handle, db, rid = fb_server
    before = _rows(db)
    body = {k: (rid if v == "ID" else v) for k, v in body.items()}
    r = _rate(handle.url, body, key)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param
    if param:
        assert f"`{param}`" in err["message"]
    assert _rows(db) == before


def test_a_server_without_a_feedback_db_says_how_to_get_one(server):
    r = _rate(server.url, {"response_id": "x", "rating": "up"})
    assert r.status_code == 404 and "--feedback-db" in r.json()["error"]["message"]
