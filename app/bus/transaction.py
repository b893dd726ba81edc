"""One database transaction per command, opened and committed here; handlers never commit.

Sessions of commands registered as writes are bound to the engine with the write option, so on
SQLite their transaction starts with `BEGIN IMMEDIATE` at the first statement (not before the
handler runs: a handler may do slow work, such as hashing a password, before touching the
database). Reads start with a plain `BEGIN`. An exception, a domain error or a cancellation rolls
back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.pipeline import Context, HandleNext
from app.db import WRITE_OPTION, create_session_factory


class TransactionMiddleware:
    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = create_session_factory(engine)
        self._writes = create_session_factory(engine.execution_options(**{WRITE_OPTION: True}))

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        factory = self._reads if context.read_only else self._writes
        async with factory() as session, session.begin():
            context.session = session
            try:
                return await call_next(context)
            finally:
                context.session = None
