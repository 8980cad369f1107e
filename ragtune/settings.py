"""Settings: a file, then the environment (RAGTUNE_*), then command-line flags, each overriding the last.

One pydantic-settings model for the values several commands share. Commands pass their flags as
keyword overrides; a flag left unset (None) does not override.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_ENV = "RAGTUNE_CONFIG"
_config_file: ContextVar[str | None] = ContextVar("ragtune_config_file", default=None)
S = TypeVar("S", bound="Settings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGTUNE_", extra="ignore")

    index: Path | None = Field(None, description="Knowledge index folder (holds versions/ and CURRENT).")
    retriever: str | None = Field(
        None,
        description="Retriever: a local sentence-transformers folder or `default` (the embedded all-MiniLM-L6-v2).",
    )
    model: Path | None = Field(
        None,
        description="Generator: a local Hugging Face model folder or `default` (the embedded SmolLM2-135M-Instruct).",
    )
    backend: str = Field("auto", description="Generation backend: auto, vllm, transformers or openai.")
    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the server listens on (0 picks a free one).")
    api_key: SecretStr | None = Field(None, description="Bearer key required on /v1/*; no default.")
    openai_base_url: str | None = Field(
        None, description="Remote OpenAI-compatible server for backend=openai."
    )
    openai_api_key: SecretStr | None = Field(None, description="Key for the remote OpenAI-compatible server.")
    top_k: int = Field(4, ge=0, le=100, description="Passages retrieved per question.")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        cfg = _config_file.get() or os.environ.get(CONFIG_ENV)
        if cfg:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cfg))
        return tuple(sources)


def load_settings(config: str | Path | None = None, *, cls: type[S] = Settings, **flags: Any) -> S:
    """Build `cls` (Settings or a subclass) from `config` (YAML; default $RAGTUNE_CONFIG), then the
    environment, then non-None flags. The process environment is left untouched, so a subprocess
    (a server started by a test or the demo) never inherits another command's settings file."""
    if config is not None and not Path(config).is_file():
        raise FileNotFoundError(
            f"settings file {config} does not exist; pass an existing YAML file to --config"
        )
    token = _config_file.set(str(config) if config is not None else None)
    try:
        return cls(**{k: v for k, v in flags.items() if v is not None})
    finally:
        _config_file.reset(token)


def cache_dir() -> Path:
    """ragtune's cache (file hashes, ONNX exports, built base models): $RAGTUNE_CACHE_DIR, else
    $XDG_CACHE_HOME/ragtune, else ~/.cache/ragtune."""
    base = os.environ.get("RAGTUNE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ragtune"
    )
    return Path(base)


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (run configs, systems files); errors name the file and fix."""
    import yaml

    from ragtune.errors import RagtuneError

    path = Path(path)
    if not path.is_file():
        raise RagtuneError(f"{what} {path} does not exist; pass an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise RagtuneError(f"{what} {path} is not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise RagtuneError(f"{what} {path} must be a mapping of field: value")
    return data


@contextmanager
def publishing(out: Path) -> Iterator[Path]:
    """A staging folder beside `out` for building a cache entry, published as `out` by one rename when the
    block succeeds; removed when it fails, or when another process published `out` first."""
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, out)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def publishing_file(out: Path) -> Iterator[Path]:
    """A staging file name beside `out`, renamed to `out` when the block succeeds (a reader never sees a
    half-written file; a crash leaves the previous `out`); removed when it fails."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
