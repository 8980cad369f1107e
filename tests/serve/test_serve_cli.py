"""`ragtune serve` on the command line: settings precedence, and bad flags as `error: ...` exit 2."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import run_ragtune


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--model", "/nonexistent/model"], "is not a Hugging Face model folder"),
        (["--model", "MODEL", "--index", "/nonexistent/index"], "no index at /nonexistent/index"),
        (["--model", "MODEL", "--top-k", "-1"], "--top-k"),
        (
            ["--model", "MODEL", "--config", "/nonexistent.yaml"],
            "settings file /nonexistent.yaml does not exist",
        ),
        (
            ["--model", "MODEL", "--weight-precision", "bf16", "--prefill-precision", "float32"],
            "--weight-precision: a float32 prefill needs float32 weights",
        ),
    ],
)
def test_bad_flags_are_clear_errors(chatty_generator, args, needle):
    args = [str(chatty_generator) if a == "MODEL" else a for a in args]
    proc = run_ragtune("serve", *args, env={"RAGTUNE_CONFIG": ""})
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_settings_file_then_environment_then_flags(chatty_generator, index_dir, tmp_path, model_id):
    from serve import start_server

    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"model: {chatty_generator}\ntop_k: 1\nmodel_id: from-file\nmax_tokens_cap: 8\n")
    env = {"RAGTUNE_MODEL_ID": "from-env", "RAGTUNE_MAX_TOKENS_CAP": "16"}
    with start_server(
        None,
        index_dir,
        extra_args=["--config", str(cfg), "--max-tokens-cap", "12", "--poll-interval", "0"],
        env=env,
    ) as srv:
        models = httpx.get(f"{srv.url}/v1/models").json()["data"]
        assert [m["id"] for m in models] == ["from-env"]  # env beats the file
        body = {"model": "from-env", "messages": [{"role": "user", "content": "Who founded Brightwater?"}]}
        r = httpx.post(f"{srv.url}/v1/chat/completions", json=body, timeout=60).json()
        assert len(r["sources"]) == 1  # from the file (nothing overrides it)
        too_many = httpx.post(f"{srv.url}/v1/chat/completions", json={**body, "max_tokens": 13}, timeout=60)
        assert (
            too_many.status_code == 400 and "at most 12" in too_many.json()["error"]["message"]
        )  # flag wins
    assert srv.proc.returncode is not None  # stopped


@pytest.mark.parametrize("model", [None, "default"], ids=["no --model", "--model default"])
def test_without_a_model_it_serves_the_embedded_default(model, index_dir, monkeypatch):
    """No --model (and none in a settings file or the environment), or `--model default`: the embedded
    SmolLM2-135M-Instruct serves, under its own name, and answers from the index."""
    from openai import OpenAI

    from ragtune.models import resolve_generator
    from serve import start_server

    resolve_generator("default")  # materialised here once, so the server's start is only its load
    for name in ("RAGTUNE_MODEL", "RAGTUNE_MODEL_ID", "RAGTUNE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    env = {"RAGTUNE_CONFIG": ""}
    with start_server(model, index_dir, extra_args=["--poll-interval", "0"], env=env) as srv:
        with OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0, timeout=120) as client:
            assert [m.id for m in client.models.list()] == ["SmolLM2-135M-Instruct"]
            r = client.chat.completions.create(
                model="SmolLM2-135M-Instruct",
                messages=[{"role": "user", "content": "What is the capital of Avalon?"}],
                max_tokens=16,
                temperature=0,
            )
        assert "Brightwater" in (r.choices[0].message.content or ""), r
        assert r.model_extra["sources"]
