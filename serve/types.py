"""Plain records shared by the generation backends and the HTTP layer (no heavy imports)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ragtune.errors import RagtuneError

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """One finished generation: greedy when temperature is 0 (what `load_generator().generate` returns)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop sequence), "length" (max_tokens or context), "cancelled"


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int | None = 0
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(
                f"`max_tokens` should be a positive integer but the value passed is {self.max_tokens}"
            )
        if self.temperature < 0:
            raise ValueError(f"`temperature` should be >= 0 but the value passed is {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"`top_p` should be in (0, 1] but the value passed is {self.top_p}")


@dataclass
class Delta:
    """A piece of a streamed generation. The last one has `finish_reason` set."""

    text: str = ""
    completion_tokens: int = 0  # tokens generated so far (EOS included)
    finish_reason: str | None = None
    prompt_tokens: int | None = None  # known to remote backends only from their usage report
    error: str | None = None


@dataclass
class Prepared:
    """A prompt ready for a backend: token ids when the backend tokenizes locally, else the messages."""

    messages: list[dict[str, str]]
    prompt_ids: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int | None:
        return None if self.prompt_ids is None else len(self.prompt_ids)


class BackendError(RagtuneError):
    """Generation failed. A RagtuneError, so that a command prints it as one `error:` line; the HTTP layer
    answers with `status` when the failure carries one (a remote server's 4xx, passed on), else with the
    status serve/errors.py's EXCEPTION_STATUS gives its class."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class GenerationFailed(BackendError):
    """The local engine (transformers, vLLM) failed on a request: the server's own fault."""


class UpstreamFailed(BackendError):
    """The remote OpenAI-compatible server refused the request, failed or could not be reached."""


def backend_failure(kind: str, message: str) -> BackendError:
    """The error for a failure a backend of `kind` reported in its stream (`Delta.error`)."""
    return UpstreamFailed(message) if kind == "openai" else GenerationFailed(message)


class Backend(Protocol):
    kind: str
    model_id: str
    max_context: int | None

    def prepare(self, messages: Messages) -> Prepared: ...

    def stream(self, prepared: Prepared, opts: SamplingOptions) -> AsyncIterator[Delta]: ...

    async def aclose(self) -> None: ...
