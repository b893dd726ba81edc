"""In-process transport: the envelope goes straight to the bus's handle side.

The handle side runs in a task of its own, so a caller that stops waiting (its deadline passed)
gets its answer at once: the task is cancelled and rolls its transaction back on its own time,
even when it is stuck behind a database lock.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.bus.bus import Bus, Outcome
    from app.bus.envelope import Envelope


class LocalTransport:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._running: set[asyncio.Task[Any]] = set()

    async def request(self, envelope: Envelope[Any]) -> Outcome:
        task = asyncio.create_task(self._deliver(envelope))
        self._running.add(task)
        task.add_done_callback(_forget(self._running))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for every delivery still running (cancelled ones included:
        they are rolling back), then cancel what is left."""
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _deliver(self, envelope: Envelope[Any]) -> Outcome:
        return await self._bus.dispatch(envelope, local=True)


def _forget(running: set[asyncio.Task[Any]]) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned task's error is not "never retrieved"

    return done
