"""Who writes the pairs: a local model folder (or `default`) or an OpenAI-compatible URL.

Both go through serve's in-process `Generator` (serve.load_generator): the transformers backend batches
the prompts of a call into one left-padded batch; the openai backend (the official `openai` client)
keeps them in flight together and, when the remote is itself a ragtune server, sends `raw_prompt` so
it neither retrieves nor wraps the prompt. A URL is checked before any work starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ragtune.errors import RagtuneError

logger = logging.getLogger(__name__)


def api_base(url: str) -> str:
    """The client's base URL: `http://host:port` gets `/v1`; a URL with a path is taken as it is."""
    url = url.rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


def check_url(url: str, api_key: str | None, model: str | None) -> str:
    """The model id to ask for at `url`; a RagtuneError naming the fix when the server cannot be used."""
    import openai

    base = api_base(url)
    client = openai.OpenAI(base_url=base, api_key=api_key or "unused", max_retries=0, timeout=10.0)
    try:
        ids = [m.id for m in client.models.list()]
    except openai.AuthenticationError:
        raise RagtuneError(
            f"the generator URL {url} refused the key; pass --api-key (or set RAGTUNE_API_KEY)"
        ) from None
    except openai.APIConnectionError as e:
        raise RagtuneError(
            f"the generator URL {url} is unreachable ({e}); start the server or fix --generator"
        ) from None
    except openai.APIStatusError as e:
        raise RagtuneError(
            f"the generator URL {url} answered {e.status_code} to GET {base}/models; is it an "
            "OpenAI-compatible server? (vLLM: http://host:8000/v1)"
        ) from None
    finally:
        client.close()
    if not ids:
        raise RagtuneError(f"the generator URL {url} serves no model")
    if model is not None and model not in ids:
        raise RagtuneError(f"the generator URL {url} serves {', '.join(ids)}, not --model {model}")
    return model or ids[0]


def prepare_generator(
    generator: str, api_key: str | None = None, model: str | None = None, batch_size: int = 8
) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(a function that loads the serve Generator, what identifies it for the progress file's key).

    Everything that can be wrong is checked here; the model itself loads only when there is work."""
    from serve import load_generator

    if generator.startswith(("http://", "https://")):
        model_id = check_url(generator, api_key, model)
        return (
            lambda: load_generator(
                model_id, backend="openai", openai_base_url=api_base(generator), openai_api_key=api_key
            )
        ), {"url": api_base(generator), "model": model_id}
    from ragtune.hashing import folder_hash
    from ragtune.models import GENERATOR_HELP, is_default, resolve_generator

    folder = resolve_generator(generator, what="--generator")
    if not (Path(folder) / "config.json").is_file():
        raise RagtuneError(
            f"--generator {generator} is not a Hugging Face model folder (no config.json); pass "
            f"{GENERATOR_HELP} or an OpenAI-compatible URL"
        )
    ident = {
        "model": "default" if is_default(generator) else Path(folder).name,
        "sha256": folder_hash(folder),
    }
    return (lambda: load_generator(str(folder), max_batch_size=batch_size)), ident


def run_jobs(
    todo: list[tuple[str, str, int, list[dict[str, str]]]],
    store: Any,
    get_generator: Callable[[], Any],
    options: dict[str, Any],
    batch_size: int,
    total: int,
    what: str,
    notes: list[str],
    show_progress: bool = True,
) -> float:
    """Generate the (key, chunk_id, i, prompt) jobs in batches of `batch_size`, each batch's replies saved
    to `store` (a synth.progress.Progress) as it finishes; the wall seconds it took.

    `total` counts the jobs already done too, for the progress bar (labelled `what`); failures are
    counted skips, summed up in one line appended to `notes`."""
    import time

    from tqdm.auto import tqdm

    errors: list[str] = []
    t0 = time.perf_counter()
    with tqdm(
        total=total, initial=total - len(todo), desc=what, unit="pair", disable=not show_progress
    ) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            outs = generate_batch(get_generator(), [p for *_, p in batch], options, errors)
            store.add([(key, chunk_id, i, out) for (key, chunk_id, i, _), out in zip(batch, outs)])
            bar.update(len(batch))
    if errors:
        notes.append(f"{len(errors)} {what} failed in this run, e.g.: {errors[0]}")
    return time.perf_counter() - t0


def generate_batch(
    generator: Any, prompts: list[list[dict[str, str]]], options: dict[str, Any], errors: list[str]
) -> list[str | None]:
    """The replies of one batch; when the batch fails, each prompt alone (a failing one gives None)."""
    from serve.types import BackendError

    try:
        return [c.text for c in generator.generate(prompts, **options)]
    except (RuntimeError, BackendError) as e:
        if len(prompts) == 1:
            logger.warning("generation failed: %s", e)
            errors.append(str(e))
            return [None]
        logger.warning("a batch of %d failed (%s); retrying its prompts one by one", len(prompts), e)
    out: list[str | None] = []
    for p in prompts:
        out.extend(generate_batch(generator, [p], options, errors))
    return out
