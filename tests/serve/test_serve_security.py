"""Issue 14: answers never show server paths, and a server reachable from other machines needs a key."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from serve_helpers import API_KEY, run_ragtune

AUTH = {"Authorization": f"Bearer {API_KEY}"}
AVALON = "What is the capital of Avalon?"


def old_style(read_sources):
    """`read_sources` as ragtune was before sources were relative: each document's absolute path."""

    def read(*args, **kwargs):
        parts = read_sources(*args, **kwargs)
        for part in parts:
            part.documents = [replace(d, source=str(Path(part.origin) / d.source)) for d in part.documents]
        return parts

    return read


def stored_sources(index: Path) -> set[str]:
    from retriever import KnowledgeIndex

    with KnowledgeIndex.open(index) as idx:
        return {p.source for p in idx.store.iter_chunks()}


def test_sources_are_relative_to_the_ingest_root_also_from_an_old_index(
    chatty_generator, encoder, model_id, tmp_path, monkeypatch
):
    from openai import OpenAI

    from ingest import pipeline
    from serve import start_server

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "d1.md").write_text("# Avalon\n\nThe capital of Avalon is Brightwater.\n")
    (docs / "d2.md").write_text("# Bakers\n\nTomas Reed works as a baker in Greenhollow.\n")
    index = tmp_path / "index"
    with monkeypatch.context() as m:
        m.setattr(pipeline, "read_sources", old_style(pipeline.read_sources))
        pipeline.ingest([docs], index, encoder=encoder, show_progress=False)
    root = docs.resolve()
    assert stored_sources(index) == {str(root / "sub" / "d1.md"), str(root / "d2.md")}  # an old index

    def sources_of(body: dict, key: str) -> list[str]:
        assert str(tmp_path) not in json.dumps(body) and str(root) not in json.dumps(body)
        return sorted(s["source"] for s in body[key])

    with (
        start_server(chatty_generator, index, api_key=API_KEY, extra_args=["--poll-interval", "0"]) as srv,
        OpenAI(base_url=srv.base_url, api_key=API_KEY, max_retries=0, timeout=60) as client,
    ):

        def ask():
            messages = [{"role": "user", "content": AVALON}]
            return client.chat.completions.create(
                model=model_id, messages=messages, max_tokens=2, extra_body={"top_k": 2}
            )

        assert sources_of(ask().model_dump(), "sources") == ["d2.md", "sub/d1.md"]
        found = httpx.post(
            f"{srv.url}/v1/retrieve", json={"query": AVALON, "top_k": 2}, headers=AUTH, timeout=60
        )
        assert sources_of(found.json(), "data") == ["d2.md", "sub/d1.md"]

        pipeline.ingest(
            [docs], index, encoder=encoder, full=True, show_progress=False
        )  # stores them relative
        assert stored_sources(index) == {"sub/d1.md", "d2.md"}
        reload = httpx.post(f"{srv.url}/v1/index/reload", headers=AUTH, timeout=60).json()
        assert reload["changed"] and reload["version"] == "v000002"
        r = ask().model_dump()
        assert r["index_version"] == "v000002" and sources_of(r, "sources") == ["d2.md", "sub/d1.md"]


@pytest.mark.parametrize(
    "source,roots,shown",
    [
        ("sub/d1.md", ["/srv/docs"], "sub/d1.md"),  # a new index: as stored
        ("/srv/docs/sub/d1.md", ["/srv/docs"], "sub/d1.md"),  # an old one: under its ingest root
        ("/srv/docs/sub/d1.md", ["/srv", "/srv/docs"], "sub/d1.md"),  # the deepest root
        ("/srv/one.md", ["/srv/one.md"], "one.md"),  # a file given to ingest
        ("/srv/data/docs.jsonl:3", ["/srv/data/docs.jsonl"], "docs.jsonl:3"),
        ("/elsewhere/y.md", ["/srv/docs"], "y.md"),  # under no root: its name
    ],
)
def test_public_source_never_shows_a_server_path(source, roots, shown):
    from serve.knowledge import public_source

    assert public_source(source, roots) == shown


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.org", False),
    ],
)
def test_only_loopback_binds_may_go_without_a_key(host, loopback):
    from serve.config import ServeSettings, is_loopback

    assert is_loopback(host) is loopback
    assert ServeSettings(host=host, api_key="").open_without_key() is not loopback  # an empty key is none
    assert not ServeSettings(host=host, api_key="k").open_without_key()


@pytest.fixture
def no_key_in_env(monkeypatch):
    for name in ("RAGTUNE_API_KEY", "RAGTUNE_INSECURE_NO_AUTH", "RAGTUNE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAGTUNE_CONFIG", "")


def test_open_bind_without_a_key_is_refused_before_binding(chatty_generator, tmp_path, no_key_in_env):
    port_file = tmp_path / "port"
    args = [
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--model",
        str(chatty_generator),
    ]
    proc = run_ragtune("serve", *args)
    assert proc.returncode == 2, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: --host 0.0.0.0 is reachable from other machines and no API key is set")
    assert "$RAGTUNE_API_KEY" in error and "--insecure-no-auth" in error and "Traceback" not in proc.stderr
    assert not port_file.exists() and "ragtune serve: http://" not in proc.stderr  # never listened


def test_insecure_no_auth_starts_the_open_server(chatty_generator, model_id, no_key_in_env):
    from serve import start_server

    flags = ["--host", "0.0.0.0", "--insecure-no-auth", "--poll-interval", "0"]
    with start_server(chatty_generator, None, extra_args=flags) as srv:  # reached through 127.0.0.1 only
        models = httpx.get(f"{srv.url}/v1/models", timeout=30)
        assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == [model_id]
        assert "without an API key (--insecure-no-auth)" in srv.log()
