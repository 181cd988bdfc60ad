"""Prometheus metrics, one registry per app so tests can build many apps."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


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
        self.upstream_failures = Counter(
            "tsprov_upstream_failures_total",
            "Tailscale calls that failed, by problem code.",
            ["code"],
            registry=self.registry,
        )
        # The audit chain's latest signed checkpoint, published outside the database.
        self.audit_checkpoint_count = Gauge(
            "tsprov_audit_checkpoint_count",
            "Events sealed into the audit chain up to the latest signed checkpoint.",
            registry=self.registry,
        )
        self.audit_checkpoint_seq = Gauge(
            "tsprov_audit_checkpoint_seq",
            "seq of the event at the latest signed audit checkpoint.",
            registry=self.registry,
        )
        self.audit_checkpoint = Info(
            "tsprov_audit_checkpoint",
            "The latest signed audit checkpoint: seq, count, hash, time, key_id, signature.",
            registry=self.registry,
        )
