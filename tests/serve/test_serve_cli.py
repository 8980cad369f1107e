"""`ragtune serve` on the command line: settings precedence, and bad flags as `error: ...` exit 2."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import run_ragtune


@pytest.mark.parametrize(
    "args,needle",
    [
        ([], "no model: pass --model"),
        (["--model", "/nonexistent/model"], "is not a Hugging Face model folder"),
        (["--model", "MODEL", "--index", "/nonexistent/index"], "no index at /nonexistent/index"),
        (["--model", "MODEL", "--top-k", "-1"], "--top-k"),
        (
            ["--model", "MODEL", "--config", "/nonexistent.yaml"],
            "settings file /nonexistent.yaml does not exist",
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
