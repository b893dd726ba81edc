"""Some modules in process, the others over NATS (BUS_TRANSPORT=nats with BUS_LOCAL_MODULES)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.bus.envelope import Outcome, module_of
from app.bus.transports.local import InFlight
from app.bus.transports.nats_client import NatsTransport

if TYPE_CHECKING:
    from app.bus.envelope import Envelope


class RoutingTransport(InFlight):
    """Commands of local modules stay in process; the others go over NATS. Draining waits for
    both kinds."""

    def __init__(self, local: Any, remote: NatsTransport, local_modules: frozenset[str]) -> None:
        super().__init__()
        self._local = local
        self._remote = remote
        self._local_modules = local_modules

    async def request(self, envelope: Envelope[Any]) -> Outcome:
        self._enter()
        try:
            if module_of(envelope.pattern) in self._local_modules:
                outcome: Outcome = await self._local.request(envelope)
                return outcome
            return await self._remote.request(envelope)
        finally:
            self._leave()
