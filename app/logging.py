"""Loguru sinks: readable text by default, one flat JSON object per line with LOG_FORMAT=json.

Standard-library loggers (uvicorn, SQLAlchemy, Litestar) are routed into the same sinks. Every
record carries the correlation id of the request or command it was written for, from
`app.correlation` (a patcher adds it as the record is made; nothing is bound per request).
Both sinks write each record themselves, in one `write`: about 5 us a line on top of loguru's
own record (see bench/RESULTS.md).
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
from loguru import logger
from opentelemetry import trace

from app import correlation

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


_threshold = 0
"""The configured level's number: records below it are dropped (0 until configured)."""


def enabled(level_no: int) -> bool:
    """Whether a record at this level would be written: cheaper to ask than to make the record
    and have it dropped (for lines written per command, such as DEBUG ones)."""
    return level_no >= _threshold


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, trace_ids: bool = False
) -> None:
    """Replace every loguru sink with the configured one. Safe to call again (tests do).
    With `trace_ids`, each record written inside a span carries its `trace_id`."""
    global _threshold
    out = stream or sys.stderr
    logger.remove()
    _threshold = logger.level(settings.log_level).no
    logger.configure(extra={}, patcher=_with_trace_id if trace_ids else _with_correlation_id)
    sink = _json_sink(out) if settings.log_format == "json" else _text_sink(out)
    logger.add(sink, level=settings.log_level, format="{message}", backtrace=False, diagnose=False)
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


def _with_correlation_id(record: Record) -> None:
    """Every record carries the correlation id of the work it was written for (or `-`), unless
    one was bound explicitly."""
    extra = record["extra"]
    if "correlation_id" not in extra:
        extra["correlation_id"] = correlation.correlation_id.get() or "-"


def _with_trace_id(record: Record) -> None:
    _with_correlation_id(record)
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record["extra"]["trace_id"] = format(context.trace_id, "032x")


_LEVEL_COLORS = {
    "TRACE": "\x1b[1m",
    "DEBUG": "\x1b[34m\x1b[1m",
    "INFO": "\x1b[1m",
    "SUCCESS": "\x1b[32m\x1b[1m",
    "WARNING": "\x1b[33m\x1b[1m",
    "ERROR": "\x1b[31m\x1b[1m",
    "CRITICAL": "\x1b[41m\x1b[1m",
}
_RESET = "\x1b[0m"


def _text_sink(out: TextIO) -> Any:
    """`time | LEVEL | correlation id | logger | message | key=value ...`, one line per record
    (a traceback follows its line). Written directly, not through a loguru format string: a
    record's fields vary, and a format string built per record is parsed again per record."""
    colors = out.isatty()

    clock = _Clock(local=True)

    def sink(message: Message) -> None:
        record = message.record
        extra = record["extra"]
        level = record["level"].name
        moment = clock.now()
        head = f"{moment} | {level:<7}"
        name = record["name"]
        if colors:
            head = f"\x1b[32m{moment}{_RESET} | {_LEVEL_COLORS.get(level, '')}{level:<7}{_RESET}"
            name = f"\x1b[36m{name}{_RESET}"
        line = f"{head} | {extra.get('correlation_id', '-')} | {name} | {record['message']}"
        fields = " ".join([f"{k}={v}" for k, v in extra.items() if k != "correlation_id"])
        if fields:
            line = f"{line} | {fields}"
        if record["exception"] is not None:
            line = line + "\n" + "".join(_format_exception(record)).rstrip("\n")
        out.write(line + "\n")
        out.flush()

    return sink


def _json_sink(out: TextIO) -> Any:
    clock = _Clock(local=False)

    def sink(message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "time": clock.now(),
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["name"],
        }
        line.update(record["extra"])
        if record["exception"] is not None:
            exc_type = record["exception"].type
            line["exception"] = exc_type.__name__ if exc_type else "Exception"
            line["traceback"] = "".join(_format_exception(record))
        out.write(_encode(line).decode() + "\n")
        out.flush()

    return sink


_encode = msgspec.json.Encoder(enc_hook=str).encode


class _Clock:
    """The time a line is written, formatted with its second's prefix made once a second:
    `2026-12-02 15:42:14.811` (local time, for text) or `2026-12-02T15:42:14.811+00:00` (UTC, for
    JSON). The record is written as it is made, so the write time is the record's time to the
    millisecond, at a fraction of the cost of formatting its aware datetime."""

    __slots__ = ("_local", "_prefix", "_second", "_suffix")

    def __init__(self, *, local: bool) -> None:
        self._local = local
        self._second = -1
        self._prefix = ""
        self._suffix = "" if local else "+00:00"

    def now(self) -> str:
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._second = second
            if self._local:
                self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            else:
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((moment - second) * 1000):03d}{self._suffix}"


def _format_exception(record: Record) -> list[str]:
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
