"""In-process transport: the envelope goes straight to the bus's handle side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.bus.bus import Bus
    from app.bus.envelope import Envelope


class LocalTransport:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def request(self, envelope: Envelope[Any]) -> Any:
        return await self._bus.dispatch(envelope)
