"""One log line per command on the handle side: pattern, outcome, duration, attempt."""

from __future__ import annotations

import time
from typing import Any

from loguru import logger

from app.bus.pipeline import Context, HandleNext
from app.errors import AppError


class LoggingMiddleware:
    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        envelope = context.envelope
        log = logger.bind(cmd=envelope.pattern, side="handle", attempt=envelope.attempt)
        started = time.perf_counter()
        try:
            result = await call_next(context)
        except AppError as exc:
            log.bind(outcome=exc.code, duration_ms=_ms(started)).info("handled")
            raise
        except BaseException as exc:
            log.bind(outcome=type(exc).__name__, duration_ms=_ms(started)).warning("handled")
            raise
        log.bind(outcome="ok", duration_ms=_ms(started)).info("handled")
        return result


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
