"""One database transaction per command, opened and committed here; handlers never commit.

Sessions of commands registered as writes are bound to the engine with the write option, so on
SQLite their transaction starts with `BEGIN IMMEDIATE` at the first statement (not before the
handler runs: a handler may do slow work, such as hashing a password, before touching the
database). Reads start with a plain `BEGIN`. An exception, a domain error or a cancellation rolls
back. A busy (locked) database or a lost connection becomes a transient `Unavailable`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.pipeline import Context, HandleNext
from app.db import WRITE_OPTION, create_session_factory
from app.errors import Unavailable


class TransactionMiddleware:
    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = create_session_factory(engine)
        self._writes = create_session_factory(engine.execution_options(**{WRITE_OPTION: True}))

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        factory = self._reads if context.read_only else self._writes
        try:
            async with factory() as session, session.begin():
                context.session = session
                try:
                    result = await call_next(context)
                    for hook in context.before_commit:
                        await hook(session, result)
                    return result
                finally:
                    context.session = None
        except DBAPIError as exc:
            transient = _transient(exc)
            if transient is None:
                raise
            raise transient from None


def _transient(exc: DBAPIError) -> Unavailable | None:
    """Database errors that leave nothing written and may pass: the transaction was rolled back,
    so the command never took effect and the sender may try again."""
    text = str(exc.orig).lower()
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate in ("40001", "40P01"):  # PostgreSQL: serialization failure, deadlock
        return Unavailable(
            "A concurrent change got in the way; please try again",
            code="DATABASE_CONFLICT",
            retry_after=1,
        )
    if "database is locked" in text or "database is busy" in text:
        return Unavailable(
            "The database is busy; please try again", code="DATABASE_BUSY", retry_after=1
        )
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return Unavailable("The database connection was lost", code="DATABASE_UNAVAILABLE")
    return None
