"""Bounded load (OWASP LLM10): how much chat work the server holds at once.

A chat request takes a slot before any work (retrieval, prompt building, generation) and gives it back
when its answer is sent, fails, or its client goes away. Three limits, each a 429 with Retry-After:
  - the queue: requests holding a slot, generating or waiting for the backend (`max_queue`);
  - per key: slots one API key (or, without one, one client address) may hold (`max_per_key`);
  - prompt tokens: the sum of the admitted prompts' tokens (`max_prompt_tokens`), so that a few long
    prompts count for what they cost, not as a few requests. A prompt over the whole budget can never be
    admitted: that is a 413, which clients do not retry.
Everything here runs on the event loop thread, so the counts need no lock.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from starlette.responses import StreamingResponse

from serve.errors import APIError
from serve.types import Prepared

REASONS = ("queue_full", "key_busy", "token_budget", "prompt_over_budget")


@dataclass(frozen=True)
class AdmissionLimits:
    max_queue: int = 256  # see ServeSettings.max_queue for why these defaults
    max_per_key: int | None = None  # None: no limit per key
    max_prompt_tokens: int | None = 1_000_000  # None: no token budget

    def __post_init__(self) -> None:
        for name in ("max_queue", "max_per_key", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` should be a positive integer but the value passed is {value}")


class Overloaded(APIError):
    """A request refused for load: 429 (retry after `retry_after` seconds) or 413 (never fits)."""

    def __init__(self, status: int, message: str, code: str, retry_after: int | None = None):
        super().__init__(status, message, code=code)
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else None


class Ticket:
    """One admitted request's slot (and its prompt tokens once charged). `release` is idempotent; used as a
    context manager it releases on exit unless handed to a response that releases it when sent."""

    def __init__(self, gate: AdmissionGate, key: str):
        self.gate, self.key = gate, key
        self.tokens = 0
        self.t0 = time.monotonic()
        self.released = self.handed_off = self.charged = False

    def charge(self, prepared: Prepared) -> None:
        """Count the prompt's tokens against the budget; raise (and release the slot) when over it."""
        self.gate.charge(self, prompt_tokens(prepared))

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate.release(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if not self.handed_off:
            self.release()


class AdmissionGate:
    def __init__(self, limits: AdmissionLimits, on_reject: Callable[[str], None] | None = None):
        self.limits = limits
        self.on_reject = on_reject
        self.admitted = 0
        self.tokens = 0
        self.per_key: Counter[str] = Counter()
        self.mean_s = 1.0  # moving average of how long a charged request holds its slot

    def admit(self, key: str) -> Ticket:
        """A slot for a request from `key`, or a 429 saying which limit is full."""
        lim = self.limits
        if self.admitted >= lim.max_queue:
            raise self._reject(
                "queue_full",
                f"the server is busy: {self.admitted} requests are in progress, its limit (--max-queue "
                f"{lim.max_queue}); retry after the Retry-After header's seconds or send fewer requests at once",
                self.admitted,
            )
        held = self.per_key[key]
        if lim.max_per_key is not None and held >= lim.max_per_key:
            raise self._reject(
                "key_busy",
                f"this API key already has {held} requests in progress, the limit per key "
                f"(--max-concurrent-per-key {lim.max_per_key}); wait for one to finish (Retry-After) "
                "before sending another",
                held,
            )
        self.admitted += 1
        self.per_key[key] += 1
        return Ticket(self, key)

    def charge(self, ticket: Ticket, tokens: int) -> None:
        budget = self.limits.max_prompt_tokens
        if budget is not None and tokens > budget:
            ticket.release()
            self._count("prompt_over_budget")
            raise Overloaded(
                413,
                f"the prompt has {tokens} tokens, more than this server's whole budget of {budget} queued "
                "prompt tokens (--max-queued-prompt-tokens); shorten the messages or lower `top_k`",
                "prompt_over_budget",
            )
        if budget is not None and self.tokens + tokens > budget:
            ticket.release()
            raise self._reject(
                "token_budget",
                f"the server is busy: the requests in progress hold {self.tokens} prompt tokens and this "
                f"prompt has {tokens}, over its limit of {budget} (--max-queued-prompt-tokens); retry after "
                "the Retry-After header's seconds or send a shorter prompt",
                self.admitted,
            )
        ticket.tokens, ticket.charged = tokens, True
        self.tokens += tokens

    def release(self, ticket: Ticket) -> None:
        self.admitted -= 1
        self.tokens -= ticket.tokens
        self.per_key[ticket.key] -= 1
        if self.per_key[ticket.key] <= 0:
            del self.per_key[ticket.key]
        if ticket.charged:
            self.mean_s = 0.8 * self.mean_s + 0.2 * (time.monotonic() - ticket.t0)

    def retry_after(self, holders: int) -> int:
        """Seconds until one of `holders` slots is likely free: a request's mean hold time shared among them
        (they finish one after another), at least 1 s and at most 60 s."""
        return min(60, max(1, math.ceil(self.mean_s / max(1, holders))))

    def _reject(self, reason: str, message: str, holders: int) -> Overloaded:
        self._count(reason)
        return Overloaded(429, message, reason, self.retry_after(holders))

    def _count(self, reason: str) -> None:
        if self.on_reject is not None:
            self.on_reject(reason)


def prompt_tokens(prepared: Prepared) -> int:
    """The prompt's token count; a remote backend without a local tokenizer gives none, so estimate it at
    one token per 4 characters (English BPE), rounded up."""
    if prepared.prompt_tokens is not None:
        return prepared.prompt_tokens
    return math.ceil(sum(len(m.get("content") or "") for m in prepared.messages) / 4)


class AdmittedStream(StreamingResponse):
    """A streaming response that holds its request's slot until the last byte is sent or the client goes
    away (the route's own `with ticket` ends when the response is returned, before it is sent)."""

    def __init__(self, ticket: Ticket, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticket = ticket
        ticket.handed_off = True

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.ticket.release()
