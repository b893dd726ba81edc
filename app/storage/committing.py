"""The shape both drivers' transactions share."""

from __future__ import annotations

import asyncio
from typing import Any


class Committing:
    """A transaction as an async context manager: committed when the block ends, rolled back if
    it raises. A cancelled block's rollback is submitted, not awaited: the cancelled caller (a
    command at its deadline) answers at once, even when the connection is still busy with the
    statement it was cancelled in. (A class, not a generator: it runs once per command.)"""

    async def _open(self) -> None:
        """Make sure the database is open (the first transactions may come before `open()`)."""

    async def end(self, *, commit: bool) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        """Roll back without waiting for it (the caller was cancelled)."""
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        await self._open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            await self.end(commit=True)
        elif issubclass(kind, asyncio.CancelledError):
            self.abandon()
        else:
            await self.end(commit=False)


# SQLite ------------------------------------------------------------------------------------------
