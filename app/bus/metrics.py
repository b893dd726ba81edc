"""Command counts and latency on each side of the bus, by pattern and outcome."""

from __future__ import annotations

import functools
import time
from typing import Any

from app.bus.envelope import Envelope
from app.bus.pipeline import Context, HandleNext, SendNext
from app.errors import AppError
from app.metrics import metrics


class SendMetricsMiddleware:
    async def __call__(self, envelope: Envelope[Any], call_next: SendNext) -> Any:
        return await _measured(envelope.pattern, "send", call_next(envelope))


class HandleMetricsMiddleware:
    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        return await _measured(context.envelope.pattern, "handle", call_next(context))


async def _measured(pattern: str, side: str, work: Any) -> Any:
    started = time.perf_counter()
    outcome = "ok"
    try:
        return await work
    except AppError as exc:
        outcome = exc.code
        raise
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        _count(pattern, side, outcome).inc()
        _seconds(pattern, side).observe(time.perf_counter() - started)


@functools.cache
def _count(pattern: str, side: str, outcome: str) -> Any:
    """The labelled child, looked up once (prometheus-client's `labels()` takes a lock)."""
    return metrics().commands.labels(pattern, side, outcome)


@functools.cache
def _seconds(pattern: str, side: str) -> Any:
    return metrics().command_seconds.labels(pattern, side)
