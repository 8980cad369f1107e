"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

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

    def set_index_version(self, version: str) -> None:
        self.index_version.clear()
        self.index_version.labels(version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
