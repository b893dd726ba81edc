"""Middleware chains.

Send side: `async (envelope, call_next)`. Handle side: `async (context, call_next)`.

The handle-side context carries the envelope plus what the chain opens for the handler (the
command's database transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from app.bus.envelope import Envelope, Outcome
from app.errors import AuthenticationRequired
from app.identity import Principal

if TYPE_CHECKING:
    from app.storage.port import Transaction

M = TypeVar("M")


BeforeCommit = Callable[["Transaction", Outcome], Awaitable[None]]
"""`hook(tx, outcome)`: runs in the command's transaction after the handler, before commit."""


@dataclass(slots=True)
class Context:
    envelope: Envelope[Any]
    read_only: bool
    result_type: Any = Any
    local: bool = False
    """Sent from this process: the sender's own timeout cancels the work at the deadline."""
    tx: Transaction | None = None
    before_commit: list[BeforeCommit] | None = None
    emitted: str | None = None
    """The module whose outbox the command wrote notifications to (`bus.emit`): once it
    commits, that outbox's relay is woken."""

    @property
    def principal(self) -> Principal:
        """The caller the command was sent for; AuthenticationRequired (401) when none was."""
        principal = self.envelope.principal
        if principal is None:
            raise AuthenticationRequired()
        return principal


HANDLING: ContextVar[Context | None] = ContextVar("handling", default=None)
"""The command whose transaction is open in this task: where `bus.emit` writes."""

SendNext = Callable[[Envelope[Any]], Awaitable[Outcome]]
HandleNext = Callable[[Context], Awaitable[Outcome]]


class SendMiddleware(Protocol):
    async def __call__(self, envelope: Envelope[Any], call_next: SendNext) -> Outcome: ...


class HandleMiddleware(Protocol):
    """Handle-side middleware. One that concerns only some patterns also has
    `applies_to(pattern, read_only) -> bool`: a pattern's chain is composed once, at its
    registration, of the middleware that applies to it."""

    async def __call__(self, context: Context, call_next: HandleNext) -> Outcome: ...


def applies(layer: HandleMiddleware, pattern: str, read_only: bool) -> bool:
    check = getattr(layer, "applies_to", None)
    return True if check is None else bool(check(pattern, read_only))


def compose(
    middleware: Sequence[Callable[..., Awaitable[Any]]],
    endpoint: Callable[[M], Awaitable[Any]],
) -> Callable[[M], Awaitable[Any]]:
    """Fold middleware around an endpoint; the first in the list runs first."""
    chain: Callable[[M], Awaitable[Any]] = endpoint
    for layer in reversed(middleware):
        chain = partial(layer, call_next=chain)
    return chain
