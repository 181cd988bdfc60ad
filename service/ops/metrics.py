"""Prometheus metrics, one registry per app so tests can build many apps."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "tsprov_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tsprov_http_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            registry=self.registry,
        )
        self.listener_up = Gauge(
            "tsprov_request_listener_up",
            "1 while the LISTEN connection for request changes is up; 0 while long-polls poll.",
            registry=self.registry,
        )
        self.long_polls = Gauge(
            "tsprov_long_polls_waiting",
            "Long-polls (wait_seconds) waiting in this process.",
            registry=self.registry,
        )
        self.upstream_failures = Counter(
            "tsprov_upstream_failures_total",
            "Tailscale calls that failed, by problem code.",
            ["code"],
            registry=self.registry,
        )
