"""A NATS connection as both sides of the NATS transport open it, and the subjects of one
deployment: commands on `<prefix>.cmd.<pattern>` (`eventboard.cmd.events.submit`), served by the
queue group `<prefix>.<module>`; every worker of a module also answers on
`<prefix>.workers.<module>`, which is how the gateway counts them; notifications go to
JetStream on `<prefix>.note.<pattern>` (`jetstream.py`). The prefix
(NATS_SUBJECT_PREFIX) keeps deployments that share a NATS server apart: each sees only its own
commands."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Any

import nats
from loguru import logger
from nats.aio.client import Client

from app.settings import Settings

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

    def notification(self, pattern: str) -> str:
        """Where a notification is published (JetStream): `<prefix>.note.events.approved`."""
        return f"{self.prefix}.note.{pattern}"

    def notifications(self) -> str:
        """Every notification of the deployment: the stream's subjects."""
        return f"{self.prefix}.note.>"


@dataclass(frozen=True)
class NatsServer:
    """Where NATS is and how to reach it: NATS_URL (one server or several, comma-separated, with
    `user:password@` or `token@` when the server wants them) and, for TLS, NATS_TLS_CA (the CA
    that signed the servers' certificates) with NATS_TLS_CERT and NATS_TLS_KEY when the servers
    verify clients too."""

    url: str
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> NatsServer:
        return cls(
            settings.nats_url, settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key
        )

    @property
    def shown(self) -> str:
        """The servers as logs and errors may show them: credentials replaced by `***`."""
        return ",".join(_CREDENTIALS.sub(r"\1***@", server) for server in self.url.split(","))

    def options(self) -> dict[str, Any]:
        """nats-py's connect options for these servers."""
        options: dict[str, Any] = {"servers": self.url.split(",")}
        if self.tls_ca or self.tls_cert:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            options["tls"] = context
        return options


_CREDENTIALS = re.compile(r"^(\w+://)[^@/]*@")


async def connect(server: NatsServer, name: str) -> Client:
    """A client that never gives up reconnecting (a NATS restart is survived in place)."""

    closing: list[Client] = []

    async def disconnected() -> None:
        if not (closing and closing[0].is_closed):
            logger.bind(nats=server.shown).warning("NATS disconnected; reconnecting")

    async def reconnected() -> None:
        logger.bind(nats=server.shown).info("NATS reconnected")

    async def failed(error: Exception) -> None:
        """nats-py's own would log the error with the URL it tried, credentials included."""
        logger.bind(nats=server.shown, error=type(error).__name__).warning("NATS error")

    client = await nats.connect(
        **server.options(),
        name=name,
        error_cb=failed,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=2,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    closing.append(client)
    return client


async def close(client: Client) -> None:
    """Close a connection, also when NATS is gone at that moment: what was buffered for it
    (a pull request, a publish) cannot be flushed, and that is no error of the process."""
    try:
        await client.close()
    except (ConnectionError, nats.errors.Error) as exc:
        logger.bind(error=type(exc).__name__).warning("NATS connection closed with data unsent")
