"""One HTTP request as its log line tells it, filled in on the way: the edge makes it and writes
the line, the bearer check names the caller, the problem handlers the error code, and the bus
adds each command the request sends (`app.correlation.commands`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar.types import Scope

from app.correlation import SentCommand
from app.identity import Principal

EXCHANGE = "eventboard"
"""The scope key of the request's `Exchange`."""


@dataclass(slots=True)
class Exchange:
    correlation_id: str
    principal: Principal | None = None
    """The caller, once a bearer token was verified."""
    problem: str | None = None
    """The problem code of an error response."""
    commands: list[SentCommand] = field(default_factory=list)


def exchange_of(scope: Scope) -> Exchange | None:
    found: Exchange | None = scope.get(EXCHANGE)  # type: ignore[assignment]
    return found
