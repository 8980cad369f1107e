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
