"""What travels on the bus: the envelope (with the caller, `app.identity.Principal`), the
pattern naming its handler, and the outcome that comes back."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from app.identity import Principal

P = TypeVar("P")

Pattern = Mapping[str, str]
"""A NestJS-style message pattern: `{"cmd": "events.submit"}`."""


class Envelope(msgspec.Struct, Generic[P], frozen=True, kw_only=True):
    pattern: str
    payload: P
    message_id: str
    correlation_id: str
    causation_id: str | None = None
    principal: Principal | None = None
    idempotency_key: str | None = None
    deadline: float | None = None
    """Absolute wall-clock time (`time.time()`) after which nobody waits for the answer."""
    attempt: int = 1
    max_attempts: int = 1
    read: bool = False
    """The sender declares the command a read: safe to repeat even if it may have run."""
    traceparent: str | None = None


class Notification(msgspec.Struct, Generic[P], frozen=True, kw_only=True):
    """Something that happened, as a module emits it (`bus.emit`) and subscribers receive it
    (`bus.on`): at least once, so `id` is what a subscriber recognises a redelivery by."""

    id: str
    pattern: str
    """What happened: `"events.approved"` (`<module>.<past tense>`)."""
    payload: P
    occurred_at: float
    """When the command that emitted it ran (`time.time()`; it commits a moment later)."""
    correlation_id: str
    """The correlation id of the command that emitted it: its request's logs and this."""
    traceparent: str | None = None
    """The trace of the command that emitted it (W3C traceparent), when it was traced."""
    actor: Principal | None = None
    """Who caused it: the command's caller."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling a command produced: its result, and whether that was replayed from the
    idempotency store rather than computed now. Every step of the handle chain returns one.

    "Replayed" has one carrier per form: `Outcome.replayed` for a result and
    `AppError.replayed` for an error, in a process; the codec's `Reply.replayed` for either on
    the wire. The gateway turns it into `Idempotent-Replayed: true`."""

    result: Any
    replayed: bool = False


_VERSION_BITS = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A random UUIDv4 as text, as `str(uuid.uuid4())` gives, without a UUID object or a system
    call: this runs for every command and most requests. Ids name messages and correlate logs;
    they are not secrets, so the (urandom-seeded) `random` generator is enough."""
    text = "%032x" % (random.getrandbits(128) & _VERSION_BITS | _VERSION_4)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_MESSAGES = itertools.count(1)
_PROCESS = new_id()[:23]
"""Random per process: message ids are unique across processes, and cheap within one."""


def new_message_id() -> str:
    """A message's id: this process's random prefix and a counter (`1f3c...-8a0b-00f1a`).
    Unique everywhere, like a UUID, at a fraction of the cost: every command gets one."""
    return f"{_PROCESS}-{next(_MESSAGES):012x}"


def module_of(pattern: str) -> str:
    """`"events.submit"` -> `"events"`: the target module, for logs, budgets and breakers."""
    return pattern.split(".", 1)[0]


def pattern_name(pattern: Pattern) -> str:
    """`{"cmd": "events.submit"}` -> `"events.submit"`."""
    name = pattern.get("cmd") if len(pattern) == 1 else None
    if not isinstance(name, str) or not name:
        raise ValueError(f'a bus pattern is {{"cmd": "<module>.<verb>"}}, got {dict(pattern)!r}')
    return name
