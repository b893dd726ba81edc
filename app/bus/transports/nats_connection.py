"""A NATS connection as both sides of the NATS transport open it, and the subjects of one
deployment: commands on `<prefix>.cmd.<pattern>` (`eventboard.cmd.events.submit`), served by the
queue group `<prefix>.<module>`; every worker of a module also answers on
`<prefix>.workers.<module>`, which is how the gateway counts them. The prefix
(NATS_SUBJECT_PREFIX) keeps deployments that share a NATS server apart: each sees only its own
commands."""

from __future__ import annotations

import nats
from loguru import logger
from nats.aio.client import Client

PRESENT = b"present"
"""A worker's answer to a census."""


class Subjects:
    """The subjects and queue groups of the deployment named by `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._commands = f"{prefix}.cmd."

    def command(self, pattern: str) -> str:
        """Where a command is sent: `<prefix>.cmd.events.submit`."""
        return self._commands + pattern

    def pattern(self, subject: str) -> str:
        """The pattern a command subject carries."""
        return subject.removeprefix(self._commands)

    def module(self, module: str) -> str:
        """Every command of a module: `<prefix>.cmd.events.>`."""
        return f"{self._commands}{module}.>"

    def queue(self, module: str) -> str:
        """The queue group a module's workers share: `<prefix>.events`."""
        return f"{self.prefix}.{module}"

    def presence(self, module: str) -> str:
        """Where each worker of a module answers a census (no queue group: all of them do)."""
        return f"{self.prefix}.workers.{module}"


async def connect(url: str, name: str) -> Client:
    """A client that never gives up reconnecting (a NATS restart is survived in place)."""

    closing: list[Client] = []

    async def disconnected() -> None:
        if not (closing and closing[0].is_closed):
            logger.bind(nats=url).warning("NATS disconnected; reconnecting")

    async def reconnected() -> None:
        logger.bind(nats=url).info("NATS reconnected")

    client = await nats.connect(
        servers=url.split(","),
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=2,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    closing.append(client)
    return client
