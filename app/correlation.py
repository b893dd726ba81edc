"""Which request a piece of work belongs to, and what the request has done so far.

The HTTP edge sets `correlation_id` and `commands` for each request; the bus sets `message_id`
while a command's handler runs (so a nested send names its cause) and appends every command it
sends to `commands`, so the edge can write one log line per request that names them. Every log
record picks up `correlation_id` (see `app.logging`).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
message_id: ContextVar[str | None] = ContextVar("message_id", default=None)


@dataclass(slots=True)
class SentCommand:
    """One command a request sent, as its log line reports it."""

    pattern: str
    attempts: int
    outcome: str
    """`ok`, or the error code it ended with."""
    duration_ms: float
    user_id: str | None
    organization_id: str | None


commands: ContextVar[list[SentCommand] | None] = ContextVar("commands", default=None)
"""The commands the current request sent, when an edge collects them (None elsewhere)."""
