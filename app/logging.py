"""Loguru sinks: readable text in development, one flat JSON object per line with LOG_FORMAT=json.

Standard-library loggers (uvicorn, SQLAlchemy, Litestar) are routed into the same sinks. The
correlation id is bound per request/command with `logger.contextualize(correlation_id=...)`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
from loguru import logger
from opentelemetry import trace

if TYPE_CHECKING:
    from loguru import Message, Record

    from app.settings import Settings

_STDLIB_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "sqlalchemy",
    "litestar",
    "alembic",
)


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, trace_ids: bool = False
) -> None:
    """Replace every loguru sink with the configured one. Safe to call again (tests do).
    With `trace_ids`, each record written inside a span carries its `trace_id`."""
    out = stream or sys.stderr
    logger.remove()
    logger.configure(extra={"correlation_id": "-"}, patcher=_add_trace_id if trace_ids else None)
    if settings.log_format == "json":
        logger.add(_json_sink(out), level=settings.log_level, format="{message}", backtrace=False)
    else:
        logger.add(
            out, level=settings.log_level, format=_text_format, backtrace=False, diagnose=False
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for name in _STDLIB_LOGGERS:
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
        std.disabled = False  # a dictConfig run before us may have disabled it
    # SQL statements carry bound parameters (password hashes among them): never below WARNING.
    for name in ("sqlalchemy", "aiosqlite", "asyncpg"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The gateway writes one line per request itself, with the correlation id and route template.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _add_trace_id(record: Record) -> None:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record["extra"]["trace_id"] = format(context.trace_id, "032x")


def _text_format(record: Record) -> str:
    fields = " ".join(f"{k}={v}" for k, v in record["extra"].items() if k != "correlation_id")
    tail = f" | {fields}" if fields else ""
    return (
        "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
        "{extra[correlation_id]} | <cyan>{name}</cyan> | {message}"
        + tail.replace("{", "{{").replace("}", "}}").replace("<", "\\<")
        + "\n{exception}"
    )


def _json_sink(out: TextIO) -> Any:
    def sink(message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["name"],
        }
        line.update(record["extra"])
        if record["exception"] is not None:
            exc_type = record["exception"].type
            line["exception"] = exc_type.__name__ if exc_type else "Exception"
            line["traceback"] = "".join(_format_exception(record))
        out.write(msgspec.json.encode(line, enc_hook=str).decode() + "\n")
        out.flush()

    return sink


def _format_exception(record: Record) -> list[str]:
    import traceback

    exc = record["exception"]
    if exc is None or exc.type is None:
        return []
    return traceback.format_exception(exc.type, exc.value, exc.traceback)


class _InterceptHandler(logging.Handler):
    """Send stdlib records to loguru, keeping the caller's level and location."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1

        def keep_name(loguru_record: Record) -> None:
            loguru_record["name"] = record.name

        logger.patch(keep_name).opt(depth=depth, exception=record.exc_info).log(
            level, record.getMessage()
        )
