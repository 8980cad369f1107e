"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "ragtune_requests", "HTTP requests by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "ragtune_request_latency_seconds",
            "End-to-end request latency.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "ragtune_time_to_first_token_seconds",
            "Time to the first streamed token.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.retrieval = Histogram(
            "ragtune_retrieval_seconds",
            "Time spent searching the index.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("ragtune_prompt_tokens", "Prompt tokens processed.", registry=r)
        self.completion_tokens = Counter("ragtune_completion_tokens", "Tokens generated.", registry=r)
        self.batch_size = Histogram(
            "ragtune_batch_size",
            "Requests per generation batch.",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.cancelled = Counter(
            "ragtune_requests_cancelled", "Generations stopped because the client went away.", registry=r
        )
        self.in_flight = Gauge("ragtune_requests_in_flight", "Chat requests being served.", registry=r)
        self.index_version = Gauge(
            "ragtune_index_version", "1 for the index version being served.", ["version"], registry=r
        )
        self.index_reloads = Counter(
            "ragtune_index_reloads", "Index reload attempts by result.", ["result"], registry=r
        )

        self.rejected = Counter(
            "ragtune_requests_rejected",
            "Chat requests refused by the load limits, by reason: queue_full, key_busy, token_budget (429) "
            "and prompt_over_budget (413).",
            ["reason"],
            registry=r,
        )
        self.admitted = Gauge(
            "ragtune_admitted_requests", "Chat requests holding a slot (generating or waiting).", registry=r
        )
        self.admitted_tokens = Gauge(
            "ragtune_admitted_prompt_tokens", "Prompt tokens of the chat requests holding a slot.", registry=r
        )

    def watch_admission(
        self, reasons: tuple[str, ...], admitted: Callable[[], float], tokens: Callable[[], float]
    ) -> Callable[[str], None]:
        """Read the admission gate's counts at scrape time; return the callback that counts a rejection.
        Every reason is shown from the start (at 0), so a rate() over it works from the first refusal."""
        for reason in reasons:
            self.rejected.labels(reason=reason)
        self.admitted.set_function(admitted)
        self.admitted_tokens.set_function(tokens)
        return lambda reason: self.rejected.labels(reason=reason).inc()

    def set_index_version(self, version: str) -> None:
        self.index_version.clear()
        self.index_version.labels(version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
