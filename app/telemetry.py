"""OpenTelemetry for any of our processes, the HTTP gateway and the workers alike.

Tracing is off unless OTEL_TRACES_EXPORTER is `otlp` (OTLP over HTTP, configured by the standard
OTEL_EXPORTER_OTLP_* variables) or `console`. The service is named for the process's role
(`eventboard-gateway`, `eventboard-events`, ...); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
win when set, as the OpenTelemetry specification has it.
"""

from __future__ import annotations

import asyncio

from loguru import logger
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from app.settings import Settings

SHUTDOWN_SECONDS = 3.0


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """The process's tracer provider, or None when tracing is off."""
    if settings.otel_traces_exporter == "none":
        return None
    provider = TracerProvider(resource=resource(service))
    exporter: SpanExporter = ConsoleSpanExporter()
    if settings.otel_traces_exporter == "otlp":
        # Imported only when used: the exporter and its protobuf code are a tenth of a second
        # of every process's start-up.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def resource(service: str) -> Resource:
    """`service.name` = `service`, unless the environment names it."""
    return Resource.create({SERVICE_NAME: service}).merge(OTELResourceDetector().detect())


async def shutdown_tracing(provider: TracerProvider) -> None:
    """Flush and close, bounded: an OTLP exporter with no collector would otherwise stall."""
    try:
        async with asyncio.timeout(SHUTDOWN_SECONDS):
            await asyncio.to_thread(provider.shutdown)
    except TimeoutError:
        logger.warning("tracing did not flush within {} s; spans dropped", SHUTDOWN_SECONDS)
