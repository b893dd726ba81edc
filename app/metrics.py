"""Prometheus metrics of HTTP requests, the bus, idempotency, breakers and rate limits.

Prometheus registries are process-wide by design, so the metrics are created once per process, on
first use (not at import), and shared by every app built in it; tests compare counter deltas.
With several uvicorn workers set PROMETHEUS_MULTIPROC_DIR (see README): prometheus-client then
keeps the values in files and /metrics aggregates the workers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    request_seconds: Histogram
    request_errors: Counter
    requests_in_progress: Gauge
    commands: Counter
    command_seconds: Histogram
    retries: Counter
    retry_budget_exhausted: Counter
    timeouts: Counter
    idempotency: Counter
    breaker_state: Gauge
    breaker_transitions: Counter
    rate_limited: Counter
    outbox_lag: Gauge
    notifications_published: Counter
    notifications_delivered: Counter
    notifications_redelivered: Counter
    notifications_dead_lettered: Counter


BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


@functools.cache
def metrics() -> Metrics:
    http = ["method", "path", "status_code", "app_name"]
    return Metrics(
        # The names and labels Litestar's Prometheus middleware used (`path` is the route
        # template, never a raw path); the edge keeps them up now (app/gateway/edge.py).
        requests=Counter("eventboard_requests_total", "Total requests", http),
        request_seconds=Histogram(
            "eventboard_request_duration_seconds", "Request duration, in seconds", http
        ),
        request_errors=Counter("eventboard_requests_error_total", "Total errors in requests", http),
        requests_in_progress=Gauge(
            "eventboard_requests_in_progress",
            "Total requests currently in progress",
            ["method", "app_name"],
            multiprocess_mode="livesum",
        ),
        commands=Counter(
            "eventboard_bus_commands_total",
            "Bus commands by pattern, side (send|handle) and outcome (ok or error code)",
            ["pattern", "side", "outcome"],
        ),
        command_seconds=Histogram(
            "eventboard_bus_command_duration_seconds",
            "Bus command latency by pattern and side",
            ["pattern", "side"],
            buckets=_LATENCY_BUCKETS,
        ),
        retries=Counter(
            "eventboard_bus_retries_total",
            "Retries by target module and reason",
            ["module", "reason"],
        ),
        retry_budget_exhausted=Counter(
            "eventboard_bus_retry_budget_exhausted_total",
            "Retries refused by the retry budget",
            ["module"],
        ),
        timeouts=Counter(
            "eventboard_bus_timeouts_total",
            "Commands stopped at their deadline, by pattern and side",
            ["pattern", "side"],
        ),
        idempotency=Counter(
            "eventboard_idempotency_total",
            "Idempotency-Key outcomes: recorded, replayed, mismatch, in_flight",
            ["pattern", "result"],
        ),
        breaker_state=Gauge(
            "eventboard_breaker_state",
            "Circuit breaker state per command pattern: 0 closed, 1 half-open, 2 open",
            ["pattern"],
            multiprocess_mode="livemax",
        ),
        breaker_transitions=Counter(
            "eventboard_breaker_transitions_total",
            "Circuit breaker transitions per command pattern and new state",
            ["pattern", "state"],
        ),
        rate_limited=Counter(
            "eventboard_rate_limited_total", "Requests refused by a rate limit", ["limit"]
        ),
        outbox_lag=Gauge(
            "eventboard_outbox_lag_seconds",
            "Age of the oldest notification of a module's outbox not yet published (0: none)",
            ["module"],
            multiprocess_mode="livemax",
        ),
        notifications_published=Counter(
            "eventboard_notifications_published_total",
            "Notifications the relay published from an outbox, per pattern",
            ["pattern"],
        ),
        notifications_delivered=Counter(
            "eventboard_notifications_delivered_total",
            "Notifications that took effect in a subscribing module, per pattern",
            ["subscriber", "pattern"],
        ),
        notifications_redelivered=Counter(
            "eventboard_notifications_redelivered_total",
            "Deliveries of a notification after its first: retries after a failure, and "
            "redeliveries the inbox recognised (which changed nothing)",
            ["subscriber", "pattern"],
        ),
        notifications_dead_lettered=Counter(
            "eventboard_notifications_dead_lettered_total",
            "Notifications parked in a module's dead letters after their last attempt",
            ["subscriber", "pattern"],
        ),
    )
