"""Correlation: which request a piece of work belongs to, and which message caused it.

The edge sets `correlation_id` for the request; the handle side sets both for the command it
runs, so a nested `bus.send` inherits the correlation id and names its cause. Every log line
written meanwhile carries the correlation id.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from loguru import logger

from app.bus.pipeline import Context, HandleNext

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
message_id: ContextVar[str | None] = ContextVar("message_id", default=None)


class CorrelationMiddleware:
    """Handle side: bind the envelope's correlation id and message id for the handler's duration."""

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        envelope = context.envelope
        correlation_token = correlation_id.set(envelope.correlation_id)
        message_token = message_id.set(envelope.message_id)
        try:
            with logger.contextualize(correlation_id=envelope.correlation_id):
                return await call_next(context)
        finally:
            message_id.reset(message_token)
            correlation_id.reset(correlation_token)
