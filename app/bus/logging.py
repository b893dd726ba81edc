"""The bus's log lines, with the same fields on both sides: pattern, module, side, attempt,
outcome, duration.

In the process that received the HTTP request, a command is reported on the request's one log
line (the edge writes it), so its own `sent` and `handled` lines are DEBUG. A worker process is a
service boundary of its own and writes one `handled` line per command at INFO. Whatever went
wrong always gets a WARNING line of its own: a failed command (timeout, unavailable, circuit
open, overload, internal error), a slow one, a retry or a retry refused.
"""

from __future__ import annotations

from loguru import logger

from app.bus.envelope import Envelope, module_of
from app.logging import enabled

DEBUG = 10
INFO = 20
WARNING = 30
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING"}


def command_line(
    level: int, message: str, envelope: Envelope[object], side: str, outcome: str, seconds: float
) -> None:
    """One line about a command, at `level` (nothing is built when that level is off). A traced
    command's line carries its trace id, from the envelope's traceparent (`00-<trace>-<span>-..`):
    a worker's line is written after the command's span has ended."""
    if enabled(level):
        traced = {"trace_id": envelope.traceparent[3:35]} if envelope.traceparent else {}
        logger.log(
            _NAMES[level],
            message,
            cmd=envelope.pattern,
            module=module_of(envelope.pattern),
            side=side,
            attempt=envelope.attempt,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 2),
            **traced,
        )
