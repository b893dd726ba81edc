"""One database transaction per command, opened and committed here; handlers never commit.

The transaction takes its connection at its first statement, so a command that never touches the
database costs nothing here, and one that does slow work first (hashing a password) holds no lock
meanwhile. Commands registered as writes get a write transaction (on SQLite, the one writer,
with `BEGIN IMMEDIATE`); reads get a reader. After the handler, the `before_commit` hooks run in
the same transaction (the idempotency record). Notifications the handler emitted are rows of the
same transaction (the outbox); once it has committed, `committed` wakes the relay. An exception,
a domain error or a cancellation rolls back. A busy database or a lost connection is a transient
`Unavailable` (the database layer raises it, after which this rolls back).
"""

from __future__ import annotations

from collections.abc import Callable

from app.bus.envelope import Outcome
from app.bus.pipeline import HANDLING, Context, HandleNext
from app.storage.port import Database


class TransactionMiddleware:
    def __init__(self, database: Database, committed: Callable[[str], None] | None = None) -> None:
        self._database = database
        self._committed = committed

    async def __call__(self, context: Context, call_next: HandleNext) -> Outcome:
        async with self._database.transaction(write=not context.read_only) as tx:
            context.tx = tx
            # Where `bus.emit` writes; a read emits nothing, so it is not marked (the hot path).
            handling = None if context.read_only else HANDLING.set(context)
            try:
                outcome = await call_next(context)
                if context.before_commit:
                    for hook in context.before_commit:
                        await hook(tx, outcome)
            finally:
                if handling is not None:
                    HANDLING.reset(handling)
                context.tx = None
        if context.emitted is not None and self._committed is not None:
            self._committed(context.emitted)
        return outcome
