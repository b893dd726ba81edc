"""OpenTelemetry spans for bus commands, one per side, linked through the envelope's traceparent.

The send span is a child of whatever is current (the HTTP request's span); the handle span is a
child of the send span, also when the module runs in another process; SQL spans nest under it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Tracer, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.bus.envelope import Envelope, Outcome
from app.bus.pipeline import Context, HandleNext, SendNext
from app.errors import AppError

_PROPAGATOR: TextMapPropagator = TraceContextTextMapPropagator()


def _attributes(envelope: Envelope[Any]) -> dict[str, Any]:
    return {
        "bus.pattern": envelope.pattern,
        "bus.correlation_id": envelope.correlation_id,
        "bus.attempt": envelope.attempt,
        "bus.message_id": envelope.message_id,
    }


def traceparent() -> str | None:
    """The current span as a W3C traceparent (a notification carries its command's), if any."""
    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


class SendTracingMiddleware:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def __call__(self, envelope: Envelope[Any], call_next: SendNext) -> Outcome:
        with self._tracer.start_as_current_span(
            f"bus.send {envelope.pattern}", kind=SpanKind.CLIENT, attributes=_attributes(envelope)
        ) as span:
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)
            traced = msgspec.structs.replace(envelope, traceparent=carrier.get("traceparent"))
            try:
                result = await call_next(traced)
            except AppError as error:
                span.set_attribute("bus.outcome", error.code)
                raise
            span.set_attribute("bus.outcome", "ok")
            return result


class HandleTracingMiddleware:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def __call__(self, context: Context, call_next: HandleNext) -> Outcome:
        envelope = context.envelope
        parent = (
            _PROPAGATOR.extract({"traceparent": envelope.traceparent})
            if envelope.traceparent
            else None
        )
        with self._tracer.start_as_current_span(
            f"bus.handle {envelope.pattern}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_attributes(envelope),
        ) as span:
            try:
                result = await call_next(context)
            except AppError as error:
                span.set_attribute("bus.outcome", error.code)
                raise
            span.set_attribute("bus.outcome", "ok")
            return result
