"""One log line per command on each side: pattern, module, outcome, duration, attempt.

`sent` (send side, once per attempt) and `handled` (handle side, once per delivery); retries add
their own `retrying` line. With the correlation id bound, `grep <id>` shows a request's whole path.
"""

from __future__ import annotations

import time
from typing import Any

from loguru import logger

from app.bus.envelope import Envelope, module_of
from app.bus.pipeline import Context, HandleNext, SendNext
from app.errors import AppError


class SendLoggingMiddleware:
    async def __call__(self, envelope: Envelope[Any], call_next: SendNext) -> Any:
        return await _logged(envelope, "send", "sent", call_next(envelope))


class HandleLoggingMiddleware:
    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        return await _logged(context.envelope, "handle", "handled", call_next(context))


async def _logged(envelope: Envelope[Any], side: str, message: str, work: Any) -> Any:
    started = time.perf_counter()
    try:
        result = await work
    except AppError as exc:
        _line(envelope, side, exc.code, started).info(message)
        raise
    except BaseException as exc:
        _line(envelope, side, type(exc).__name__, started).warning(message)
        raise
    _line(envelope, side, "ok", started).info(message)
    return result


def _line(envelope: Envelope[Any], side: str, outcome: str, started: float) -> Any:
    return logger.bind(
        cmd=envelope.pattern,
        module=module_of(envelope.pattern),
        side=side,
        attempt=envelope.attempt,
        outcome=outcome,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
