"""A NATS connection as both sides of the NATS transport open it, and the subjects commands use:
`cmd.<pattern>` (`cmd.events.submit`)."""

from __future__ import annotations

import nats
from loguru import logger
from nats.aio.client import Client

SUBJECT_PREFIX = "cmd."


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
