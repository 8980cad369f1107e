"""`ragtune serve`: the OpenAI-compatible RAG chat server (uvicorn)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ragtune.errors import RagtuneError
from ragtune.models import GENERATOR_HELP, RETRIEVER_HELP
from ragtune.retrieval import retrieval_options
from serve.llamacpp_models import SERVE_GGUF_TYPES

if TYPE_CHECKING:
    from serve.config import ServeSettings

logger = logging.getLogger(__name__)


@click.command("serve")
@click.option(
    "--model",
    type=click.Path(),
    default=None,
    help=f"Generator: {GENERATOR_HELP}, which also serves when --model is unset "
    "(for --backend openai: a local folder for its tokenizer, or the remote model's name).",
)
@click.option("--index", type=click.Path(), default=None, help="Knowledge index folder (holds CURRENT).")
@click.option(
    "--retriever",
    default=None,
    help=f"Retriever: {RETRIEVER_HELP}; unset: the encoder the index was built with.",
)
@retrieval_options(kind_param="retrieval_mode", defaults=False)
@click.option(
    "--backend",
    type=click.Choice(["auto", "vllm", "llama.cpp", "transformers", "ctranslate2", "openai"]),
    default=None,
    help="Generation backend (default auto: vLLM when it and CUDA are present, else llama.cpp when "
    "llama-cpp-python is installed, else transformers; ctranslate2: CPU, int8, needs the ct2 extra).",
)
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000; 0 picks a free one).")
@click.option(
    "--api-key",
    default=None,
    help="Require `Authorization: Bearer KEY` on /v1/* (no default; "
    "prefer $RAGTUNE_API_KEY, which `ps` does not show).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Allow a non-loopback --host without an API key (anyone who reaches the port can chat and reload "
    "the index); without it such a start is refused.",
)
@click.option(
    "--openai-base-url", default=None, help="backend openai: the remote server, e.g. http://h:8000/v1."
)
@click.option("--openai-api-key", default=None, help="backend openai: the remote server's key.")
@click.option("--top-k", type=int, default=None, help="Passages retrieved per question (default 4).")
@click.option(
    "--model-id",
    default=None,
    help="Name clients send as `model` (default: the folder's name; SmolLM2-135M-Instruct for `default`).",
)
@click.option("--max-tokens-cap", type=int, default=None, help="Largest max_tokens a request may ask for.")
@click.option(
    "--max-queue",
    type=int,
    default=None,
    help="Chat requests held at once (generating or waiting); one more is a 429 with Retry-After "
    "(default 256).",
)
@click.option(
    "--max-concurrent-per-key",
    type=int,
    default=None,
    help="Chat requests one API key (without --api-key: one bearer token, else one client address) may "
    "hold at once (default: no limit).",
)
@click.option(
    "--max-queued-prompt-tokens",
    type=int,
    default=None,
    help="Prompt tokens the held chat requests may sum to: a prompt that does not fit now is a 429, one "
    "over the whole budget a 413 (default 1000000).",
)
@click.option(
    "--poll-interval", type=float, default=None, help="Seconds between index CURRENT checks (0: off)."
)
@click.option(
    "--max-batch-size", type=int, default=None, help="transformers: requests per batch (default 16)."
)
@click.option("--batch-window-ms", type=float, default=None, help="transformers: batch collection window.")
@click.option("--torch-threads", type=int, default=None, help="CPU threads for torch (1 suits a shared CPU).")
@click.option(
    "--prefill-precision",
    type=click.Choice(["auto", "float32", "bf16-autocast"]),
    default=None,
    help="transformers on CPU: prefill with bf16 autocast or float32 (default auto: bf16 where native).",
)
@click.option(
    "--weight-precision",
    type=click.Choice(["auto", "float32", "bf16"]),
    default=None,
    help="transformers on CPU: linear weights in bf16 or float32 (default auto: bf16 where native).",
)
@click.option(
    "--prefix-cache-mb",
    type=float,
    default=None,
    help="transformers: MiB of recent prompts' KV states reused by repeated prompts (default 512; 0: off); "
    "llama.cpp: 0 turns off the reuse of finished requests' KV cells by prompts sharing their prefix.",
)
@click.option(
    "--prefill-chunk-tokens",
    type=int,
    default=None,
    help="transformers: prompt tokens prefilled per decode step while others decode (default 256).",
)
@click.option(
    "--cpu-kernels/--no-cpu-kernels",
    default=None,
    help="transformers on CPU: ragtune's decode path (default on); off = transformers' own.",
)
@click.option(
    "--ct2-compute-type",
    type=click.Choice(["int8", "float32"]),
    default=None,
    help="ctranslate2: weights (default int8 where the CPU has it; float32 keeps fp32's greedy text).",
)
@click.option(
    "--lora",
    "loras",
    multiple=True,
    default=None,
    help="llama.cpp: serve a LoRA adapter over the base as NAME=ADAPTER (a GGUF LoRA or a `ragtune tune "
    "generator` folder); repeat for several; a request's `model` picks one by NAME.",
)
@click.option(
    "--gguf-type",
    type=click.Choice(SERVE_GGUF_TYPES),
    default=None,
    help="llama.cpp: the type a model folder without its own model.gguf is converted to (default f16); "
    "`shipped`: the default model's own Q4_1 GGUF as is.",
)
@click.option("--llamacpp-ctx", type=int, default=None, help="llama.cpp: context positions per request.")
@click.option("--tensor-parallel-size", type=int, default=None, help="vllm: tensor-parallel GPUs.")
@click.option("--pipeline-parallel-size", type=int, default=None, help="vllm: pipeline stages.")
@click.option("--max-model-len", type=int, default=None, help="vllm: context length.")
@click.option("--gpu-memory-utilization", type=float, default=None, help="vllm: GPU memory fraction.")
@click.option(
    "--from",
    "from_run",
    type=click.Path(),
    default=None,
    help="Serve the winner of a `ragtune run` folder: its model, index, retriever, top-k and few-shot turns "
    "from RUN/winner.json (flags for those are refused; host, port, keys and limits still apply).",
)
@click.option(
    "--feedback-db",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file that stores every answer and the ratings of them (POST /v1/feedback, the page's "
    "buttons); `ragtune feedback export` turns it into training data.",
)
@click.option("--config", type=click.Path(), default=None, help="YAML settings file (flags override it).")
@click.option(
    "--port-file", type=click.Path(), default=None, help="Write the bound port here once listening."
)
def serve(config: str | None, port_file: str | None, from_run: str | None, **flags) -> None:
    """Serve the OpenAI-compatible RAG chat endpoint with sources and live index refresh."""
    import uvicorn

    from ragtune.logs import quiet_libraries
    from serve.app import create_app

    quiet_libraries()  # no "Loading weights" bars: loading the model is not a step of ours
    if from_run is not None:
        flags = _winner_flags(from_run, flags)
    settings = _settings(config, flags)
    _check_auth(settings)
    _check_inputs(settings)
    app = create_app(settings)
    sock = _bind(settings.host, settings.port)
    bound = sock.getsockname()[1]
    if port_file:
        tmp = Path(port_file).with_suffix(".tmp")
        tmp.write_text(str(bound))
        tmp.replace(port_file)
    click.echo(
        f"ragtune serve: http://{settings.host}:{bound} (model {settings.model}, index {settings.index})",
        err=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level=settings.log_level.lower(), access_log=False, timeout_graceful_shutdown=10
        )
    )
    server.run(sockets=[sock])


def _settings(config: str | None, flags: dict) -> ServeSettings:
    """The settings file, then the environment, then the flags; a bad value is an error naming its flag."""
    from pydantic import ValidationError

    from serve.config import load_serve_settings

    flags["loras"] = list(flags.get("loras") or []) or None  # click gives () for an unused multiple option

    try:
        return load_serve_settings(config, **flags)
    except ValidationError as e:
        err = e.errors()[0]
        raise RagtuneError(
            f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']} (got {err.get('input')!r})"
        ) from None
    except FileNotFoundError as e:
        raise RagtuneError(str(e)) from None


def _check_auth(settings: ServeSettings) -> None:
    """Refuse a non-loopback bind without an API key, unless --insecure-no-auth (then warn)."""
    if not settings.open_without_key():
        return
    if not settings.insecure_no_auth:
        raise RagtuneError(
            f"--host {settings.host} is reachable from other machines and no API key is set: set "
            "$RAGTUNE_API_KEY (or --api-key), bind --host 127.0.0.1, or pass --insecure-no-auth to "
            "serve without a key"
        )
    logger.warning(
        "listening on %s without an API key (--insecure-no-auth): anyone who reaches it can chat and "
        "reload the index",
        settings.host,
    )


def _check_inputs(settings: ServeSettings) -> None:
    """Resolve the default generator, then check the model folder and the index before anything loads."""
    from ragtune.models import DEFAULT_GENERATOR, is_default, resolve_generator
    from serve.backends import check_model_dir, resolve_backend
    from serve.precision import resolve_weight_precision

    if is_default(settings.model) or (settings.model is None and settings.backend != "openai"):
        settings.model = resolve_generator(settings.model, what="--model")
        settings.model_id = settings.model_id or DEFAULT_GENERATOR.name
    kind = resolve_backend(settings.backend, settings.model)
    check_model_dir(settings.model, kind)
    if settings.loras and kind != "llama.cpp":
        raise RagtuneError(f"--lora serves adapters with --backend llama.cpp, not {kind}")
    settings.llamacpp_options()  # a malformed --lora is an error before anything loads
    try:
        resolve_weight_precision(settings.weight_precision, settings.prefill_precision)
    except ValueError as e:
        raise RagtuneError(f"--weight-precision: {e}") from None
    if settings.index is not None:
        from retriever import current_version

        current_version(settings.index)  # IndexNotFound / IndexCorrupt say how to build or fix it


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise RagtuneError(
            f"cannot listen on {host}:{port} ({e.strerror}); pick another --port (0 picks a free one)"
        ) from None
    return sock


_FROM_SETS = ("model", "index", "retriever", "top_k", "retrieval_mode")


def _winner_flags(run_dir: str, flags: dict) -> dict:
    """The flags that serve exactly the system `RUN/winner.json` names (ragtune/winner.py)."""
    from ragtune.winner import read_winner

    clash = [f"--{k.replace('_', '-')}" for k in _FROM_SETS if flags.get(k) is not None]
    if clash:
        raise RagtuneError(
            f"--from {run_dir} sets {', '.join(clash)} from the run's winner; drop {' and '.join(clash)}, or "
            "serve without --from"
        )
    w = read_winner(run_dir)
    out = dict(flags)
    out.update(
        model=w.resolve(run_dir, w.model),
        index=w.resolve(run_dir, w.index),
        retriever=str(w.resolve(run_dir, w.retriever)) if w.retriever else None,
        top_k=w.top_k if w.retrieval else None,
        retrieval_mode=w.retrieval_mode if w.retrieval else None,
        default_retrieval=w.retrieval,
        fewshot_turns=w.fewshot,
        run_name=w.run,
        system_name=w.system,
        model_id=flags.get("model_id") or f"{w.run}:{w.system}",
    )
    if w.index is not None:
        from retriever import current_version

        now = current_version(w.resolve(run_dir, w.index))
        if now != w.index_version:
            logger.warning(
                "the run's verdict was measured on index version %s; the index has moved on to %s since "
                "(documents refreshed): serving %s",
                w.index_version,
                now,
                now,
            )
    return out
