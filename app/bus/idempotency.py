"""Idempotency keys with exactly-once effect, as handle-side bus middleware.

A command that carries an `Idempotency-Key` changes state at most once per (organization, user,
pattern, key), however often, however concurrently and from however many processes it is sent:

1. **In flight.** A duplicate of a request still running in this process gets 409 at once (422
   if it is another request), with Retry-After until the first one's deadline. The entry lives
   exactly as long as the first request's task, so an "in flight" whose owner died cannot linger.
2. **Record, in the command's own transaction.** The command runs; after the handler, its
   outcome is inserted (taking over the key's record if that one has expired) as the last
   statement before COMMIT (on SQLite in the same hop). The state change and its record commit
   together or not at all (a crash or cancellation leaves neither). If the key is taken,
   the request is a duplicate (of an earlier one, or of a concurrent one in another process): its
   change rolls back and the stored outcome is replayed (`Idempotent-Replayed`), or 422 if the
   key was used for another request. The unique constraint makes it exactly once.
3. **Lookup only when something went wrong.** A duplicate of a completed request usually fails
   differently (submitting again is a 409), so on any error the stored outcome, if there is one,
   is the answer. The usual, successful first request pays for one INSERT and no lookup.
4. **What is recorded.** Results, and domain refusals (401, 403, 404, 409), which are outcomes of
   a command that ran; those roll back nothing, so they are recorded in a short transaction of
   their own. Validation errors, transient failures (timeouts, unavailable) and internal errors
   are not recorded, so the client may try again.

The fingerprint is an HMAC of the pattern and the canonical encoded command (field order and
whitespace do not matter; nothing in the table can be brute-forced back to, say, a password). A
command without a principal (signup) is scoped by its fingerprint: only the identical request
gets its outcome back.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.bus import codec
from app.bus.envelope import Envelope, Outcome
from app.bus.pipeline import Context, HandleNext
from app.clock import utcnow
from app.errors import AppError, Category, Conflict, Mismatch
from app.metrics import metrics
from app.storage.port import Database, NothingChanged, Query, Transaction
from app.storage.schema import Base, UTCDateTime

RECORDED_CATEGORIES = frozenset(
    {
        Category.UNAUTHORIZED,
        Category.FORBIDDEN,
        Category.NOT_FOUND,
        Category.CONFLICT,
        Category.PRECONDITION_FAILED,
    }
)
"""Errors that are outcomes of a command that ran: recorded and replayed like results."""

KEYS = Table(
    "bus_idempotency_keys",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("organization_id", String(36), nullable=False),
    Column("user_id", String(80), nullable=False),
    Column("pattern", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("reply", LargeBinary, nullable=False),  # the outcome as the wire codec encodes it
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    UniqueConstraint("organization_id", "user_id", "pattern", "key"),
    Index("ix_bus_idempotency_keys_expires_at", "expires_at"),
)

_SCOPE = (
    KEYS.c.organization_id == bindparam("organization_id"),
    KEYS.c.user_id == bindparam("user_id"),
    KEYS.c.pattern == bindparam("pattern"),
    KEYS.c.key == bindparam("key"),
)
_RECORD = (
    "organization_id",
    "user_id",
    "pattern",
    "key",
    "fingerprint",
    "reply",
    "created_at",
    "expires_at",
)


def _record_statement(dialect: str) -> Any:
    """Insert the record, or take over the key's expired one; a live record stays, and the
    statement changes no row."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(KEYS).values({name: bindparam(name) for name in _RECORD})
    return statement.on_conflict_do_update(
        index_elements=["organization_id", "user_id", "pattern", "key"],
        set_={name: statement.excluded[name] for name in _RECORD[4:]},
        where=KEYS.c.expires_at <= statement.excluded.created_at,
    )


_RECORD_KEY = Query(_record_statement)
_LOOKUP = Query(
    select(KEYS.c.fingerprint, KEYS.c.reply).where(*_SCOPE, KEYS.c.expires_at > bindparam("now")),
    point=True,  # the unique (organization, user, pattern, key)
)
_PURGE = Query(
    delete(KEYS).where(
        KEYS.c.id.in_(
            select(KEYS.c.id)
            .where(KEYS.c.expires_at <= bindparam("now"))
            .limit(bindparam("batch"))
            .scalar_subquery()
        )
    )
)


class KeyInFlight(Conflict):
    default_code = "IDEMPOTENCY_KEY_IN_FLIGHT"
    default_message = "A request with this Idempotency-Key is still being processed"


class KeyReusedDifferently(Mismatch):
    default_code = "IDEMPOTENCY_KEY_MISMATCH"
    default_message = (
        "This Idempotency-Key was used with a different request "
        "(method, path or body); use a new key for a new request"
    )


@dataclass(frozen=True, slots=True)
class _Scope:
    organization_id: str
    user_id: str
    pattern: str
    key: str


@dataclass(frozen=True, slots=True)
class _Running:
    fingerprint: str
    deadline: float


class RecordedElsewhere(NothingChanged):
    """The record step changed no row at commit: another process recorded the key first."""


class IdempotencyMiddleware:
    def __init__(self, database: Database, *, secret: str, ttl: float) -> None:
        self._database = database
        self._hmac_key = hmac.new(secret.encode(), b"idempotency-fingerprint", "sha256").digest()
        self._ttl = timedelta(seconds=ttl)
        self._running: dict[_Scope, _Running] = {}

    def fingerprint(self, envelope: Envelope[Any]) -> str:
        canonical = envelope.pattern.encode() + b"\0" + msgspec.msgpack.encode(envelope.payload)
        return hmac.new(self._hmac_key, canonical, hashlib.sha256).hexdigest()

    def applies_to(self, pattern: str, read_only: bool) -> bool:
        return not read_only  # a read changes nothing to do once

    async def __call__(self, context: Context, call_next: HandleNext) -> Outcome:
        envelope = context.envelope
        if envelope.idempotency_key is None or context.read_only:
            return await call_next(context)
        fingerprint = self.fingerprint(envelope)
        scope = _scope(envelope, fingerprint)

        running = self._running.get(scope)
        if running is not None:
            if running.fingerprint != fingerprint:
                _count(scope, "mismatch")
                raise KeyReusedDifferently()
            _count(scope, "in_flight")
            raise KeyInFlight(retry_after=min(60.0, max(1.0, running.deadline - time.time())))
        deadline = envelope.deadline or time.time() + 60.0
        self._running[scope] = _Running(fingerprint, deadline)
        try:
            return await self._run(context, call_next, scope, fingerprint)
        finally:
            del self._running[scope]

    async def _run(
        self, context: Context, call_next: HandleNext, scope: _Scope, fingerprint: str
    ) -> Outcome:
        """Run the command optimistically and record its outcome at commit; consult the store
        only when something went wrong, which is also when a duplicate would show itself."""

        async def record(tx: Transaction, outcome: Outcome) -> None:
            reply = codec.encode_outcome(outcome)
            row = self._row(scope, fingerprint, reply)
            await tx.defer(_RECORD_KEY, row, unchanged=RecordedElsewhere)

        context.before_commit = [*(context.before_commit or ()), record]
        try:
            outcome = await call_next(context)
        except RecordedElsewhere:
            # Another process recorded this key first: this command's change rolled back.
            return await self._replay_stored(scope, fingerprint, context)
        except AppError as error:
            # A duplicate of a completed request fails differently (submit again -> 409); its
            # stored outcome is the answer. Otherwise the error is this request's own outcome.
            stored = await self._stored(scope, fingerprint)
            if stored is not None:
                return _replay(stored, context)
            if error.category not in RECORDED_CATEGORIES:
                raise
            reply = codec.encode_error(error)
            async with self._database.transaction(write=True) as tx:
                recorded = await tx.execute(_RECORD_KEY, self._row(scope, fingerprint, reply))
            if not recorded:
                return await self._replay_stored(scope, fingerprint, context)
            _count(scope, "recorded")
            raise
        _count(scope, "recorded")
        return outcome

    def _row(self, scope: _Scope, fingerprint: str, reply: bytes) -> dict[str, Any]:
        now = utcnow()
        return {
            **_columns(scope),
            "fingerprint": fingerprint,
            "reply": reply,
            "created_at": now,
            "expires_at": now + self._ttl,
        }

    async def _stored(self, scope: _Scope, fingerprint: str) -> bytes | None:
        """The live stored outcome for the scope, if any; a mismatch if it was another request."""
        async with self._database.transaction(write=False) as tx:
            row = await tx.fetch_one(_LOOKUP, {**_columns(scope), "now": utcnow()})
        if row is None:
            return None
        if row[0] != fingerprint:
            _count(scope, "mismatch")
            raise KeyReusedDifferently()
        _count(scope, "replayed")
        return bytes(row[1])

    async def _replay_stored(self, scope: _Scope, fingerprint: str, context: Context) -> Outcome:
        stored = await self._stored(scope, fingerprint)
        if stored is None:  # recorded, then expired in between: rare; the client may retry
            raise KeyInFlight(retry_after=1.0)
        return _replay(stored, context)


def _count(scope: _Scope, result: str) -> None:
    _counter(scope.pattern, result).inc()


@functools.cache
def _counter(pattern: str, result: str) -> Any:
    """The labelled child, looked up once per pattern and result."""
    return metrics().idempotency.labels(pattern, result)


def _replay(stored: bytes, context: Context) -> Outcome:
    try:
        outcome = codec.decode_reply(stored, context.result_type)
    except AppError as error:
        error.replayed = True
        raise
    return Outcome(outcome.result, replayed=True)


def _scope(envelope: Envelope[Any], fingerprint: str) -> _Scope:
    assert envelope.idempotency_key is not None
    principal = envelope.principal
    if principal is None:
        return _Scope(
            "", f"anonymous:{fingerprint[:32]}", envelope.pattern, envelope.idempotency_key
        )
    return _Scope(
        principal.organization_id, principal.user_id, envelope.pattern, envelope.idempotency_key
    )


def _columns(scope: _Scope) -> dict[str, str]:
    return {
        "organization_id": scope.organization_id,
        "user_id": scope.user_id,
        "pattern": scope.pattern,
        "key": scope.key,
    }


async def purge_expired(database: Database, *, batch: int = 1000) -> int:
    """Delete expired keys in batches of `batch` rows, each batch its own short transaction."""
    purged = 0
    while True:
        async with database.transaction(write=True, background=True) as tx:
            deleted = await tx.execute(_PURGE, {"now": utcnow(), "batch": batch})
        purged += deleted
        if deleted < batch:
            return purged


async def purge_forever(
    database: Database,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    *,
    also: Sequence[Callable[[], Awaitable[int]]] = (),
) -> None:
    """The background purge: every `interval` seconds, off the request path; `also` are the
    other purges that run with it (outboxes and inboxes past their retention)."""
    while True:
        await sleep(interval)
        try:
            purged = await purge_expired(database)
            for purge in also:
                purged += await purge()
            if purged:
                logger.bind(purged=purged).info("expired keys and notifications purged")
        except Exception:
            logger.opt(exception=True).warning("purge failed; will try again")
