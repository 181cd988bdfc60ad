"""Prometheus metrics, one registry per app so tests can build many apps.

Counters move where things happen; the gauges (breaker, pool, grants and requests by
status) are set when ``/metrics`` is scraped (``service.ops.scrape``), so keeping them
costs nothing between scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Tailscale answers in tens of milliseconds, a retried or stalled call in seconds.
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
BREAKER_STATES = {"closed": 0, "open": 1, "half_open": 2}


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        # When the status gauges were last counted (service.ops.scrape).
        self.counted_at = float("-inf")
        self._http()
        self._upstream()
        self._grants()
        self._database()
        self._audit()

    def _http(self) -> None:
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

    def _upstream(self) -> None:
        self.upstream_failures = Counter(
            "tsprov_upstream_failures_total",
            "Tailscale calls that failed a request, by problem code.",
            ["code"],
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "tsprov_upstream_calls_total",
            "Calls to Tailscale by endpoint template and outcome (ok, refused, failed, "
            "unknown, breaker_open).",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "tsprov_upstream_call_seconds",
            "Time from the first attempt to the answer, retries included, by endpoint.",
            ["endpoint"],
            buckets=UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.upstream_retries = Counter(
            "tsprov_upstream_retries_total",
            "Attempts at Tailscale sent again after a failed one, by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "tsprov_upstream_breaker_state",
            "This process's circuit breaker towards Tailscale: 0 closed, 1 open, 2 half-open.",
            registry=self.registry,
        )

    def _grants(self) -> None:
        self.refreshes = Counter(
            "tsprov_grant_refreshes_total",
            "Refreshes of reusable grants by outcome (refreshed, needs_consent, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.refresh_lock_waits = Counter(
            "tsprov_grant_refresh_lock_waits_total",
            "Times a refresh found its grant locked by another replica and waited.",
            registry=self.registry,
        )
        self.grants_by_status = Gauge(
            "tsprov_grants",
            "Grants by status, counted at scrape time (cached briefly).",
            ["status"],
            registry=self.registry,
        )
        self.requests_by_status = Gauge(
            "tsprov_provisioning_requests",
            "Provisioning requests by status, counted at scrape time (cached briefly).",
            ["status"],
            registry=self.registry,
        )

    def _database(self) -> None:
        self.pool_size = Gauge(
            "tsprov_db_pool_size",
            "Connections this process's pool may hold.",
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "tsprov_db_pool_in_use", "Pooled connections checked out now.", registry=self.registry
        )
        self.pool_waiting = Gauge(
            "tsprov_db_pool_waiting",
            "Tasks waiting for a pooled connection now.",
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    # The tailscale transport's CallObserver.
    def upstream_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.upstream_calls.labels(endpoint, outcome).inc()
        self.upstream_latency.labels(endpoint).observe(seconds)

    def upstream_retry(self, endpoint: str) -> None:
        self.upstream_retries.labels(endpoint).inc()

    def _audit(self) -> None:
        self.audit_sealer_lag = Gauge(
            "tsprov_audit_sealer_lag_events",
            "Audit events recorded but not yet sealed into the chain, after the last round.",
            registry=self.registry,
        )
        self.audit_verify_failures = Counter(
            "tsprov_audit_verify_failures",
            "Runs of GET /v1/audit/verify that found the chain broken.",
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
