"""In-process transport: the envelope goes straight to the bus's handle side, in the sender's
own task.

No task of its own: the sender's deadline timer cancels the work in place, and nothing the work
does once cancelled makes the sender wait (the database layer submits a rollback without waiting
for it; see `app/storage/sqlite.py`), so the 504 is answered at the deadline even when the work was
stuck behind a database lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.bus.bus import Bus
    from app.bus.envelope import Envelope, Outcome


class InFlight:
    """The deliveries a sending side has running, and a wait for the last of them to end."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._idle: asyncio.Future[None] | None = None
        """Set while draining: done when the last delivery ends."""

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for every delivery still running; what is left is
        cancelled by its owner (the server cancels the requests still running after its own
        grace period)."""
        if self.in_flight:
            if self._idle is None or self._idle.done():
                self._idle = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._idle), timeout=grace)

    def _enter(self) -> None:
        self.in_flight += 1

    def _leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)


class LocalTransport(InFlight):
    def __init__(self, bus: Bus) -> None:
        super().__init__()
        self._bus = bus

    async def request(self, envelope: Envelope[Any]) -> Outcome:
        self._enter()
        try:
            return await self._bus.dispatch(envelope, local=True)
        finally:
            self._leave()
