"""Idempotency keys with exactly-once effect, as handle-side bus middleware.

A command that carries an `Idempotency-Key` runs at most once per (organization, user, pattern,
key), however often and however concurrently it is sent:

1. **Claim** (a short transaction of its own, so concurrent duplicates see it): a row in
   `bus_idempotency_keys` with the request's fingerprint, `in_flight`, leased until the command's
   deadline plus a grace period. If the key is already there: another request -> 422; completed ->
   the stored outcome is replayed; still in flight -> 409 with Retry-After. An expired key, or an
   in-flight lease whose owner died, is taken over.
2. **Complete** in the command's own transaction (a before-commit hook): the state change and the
   stored outcome commit together, or neither does. A lease lost meanwhile rolls the change back.
3. **Release** the claim when nothing should be stored: validation errors, transient failures
   (timeouts, unavailable), internal errors and cancellation, so the client may try again.
   Domain refusals (403, 404, 409) are outcomes: they are stored and replayed.

The fingerprint is an HMAC of the pattern and the canonical encoded command, so field order and
whitespace do not matter, and nothing in the table can be brute-forced back to, say, a password.
A command without a principal (signup) is scoped by its fingerprint: only the identical request
gets its outcome back.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import Index, Integer, LargeBinary, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.bus import codec
from app.bus.bus import Replayed
from app.bus.envelope import Envelope
from app.bus.pipeline import Context, HandleNext
from app.clock import utcnow
from app.db import Base, UTCDateTime, write_transaction
from app.errors import AppError, Category, Conflict, Mismatch

IN_FLIGHT = "in_flight"
COMPLETED = "completed"
STORED_CATEGORIES = frozenset(
    {Category.UNAUTHORIZED, Category.FORBIDDEN, Category.NOT_FOUND, Category.CONFLICT}
)
"""Errors that are outcomes of a command that ran, stored and replayed like results."""


class IdempotencyKey(Base):
    __tablename__ = "bus_idempotency_keys"
    __table_args__ = (
        UniqueConstraint("organization_id", "user_id", "pattern", "key"),
        Index("ix_bus_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(String(80))
    pattern: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(36))
    reply: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KeyInFlight(Conflict):
    default_code = "IDEMPOTENCY_KEY_IN_FLIGHT"
    default_message = "A request with this Idempotency-Key is still being processed"


class KeyReusedDifferently(Mismatch):
    default_code = "IDEMPOTENCY_KEY_MISMATCH"
    default_message = (
        "This Idempotency-Key was used with a different request "
        "(method, path or body); use a new key for a new request"
    )


class LeaseLost(Conflict):
    default_code = "IDEMPOTENCY_KEY_IN_FLIGHT"
    default_message = "The request outlived its idempotency lease; it was not applied"


@dataclass(frozen=True, slots=True)
class _Scope:
    organization_id: str
    user_id: str
    pattern: str
    key: str


class IdempotencyMiddleware:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        secret: str,
        ttl: float,
        grace: float = 5.0,
        default_lease: float = 60.0,
    ) -> None:
        self._engine = engine
        self._hmac_key = hmac.new(secret.encode(), b"idempotency-fingerprint", "sha256").digest()
        self._ttl = timedelta(seconds=ttl)
        self._grace = grace
        self._default_lease = default_lease

    def fingerprint(self, envelope: Envelope[Any]) -> str:
        canonical = envelope.pattern.encode() + b"\0" + msgspec.msgpack.encode(envelope.payload)
        return hmac.new(self._hmac_key, canonical, hashlib.sha256).hexdigest()

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        envelope = context.envelope
        if envelope.idempotency_key is None or context.read_only:
            return await call_next(context)
        fingerprint = self.fingerprint(envelope)
        scope = self._scope(envelope, fingerprint)
        stored = await self._claim(scope, fingerprint, envelope)
        if stored is not None:
            return self._replay(stored, context)

        owner = envelope.message_id

        async def complete(session: AsyncSession, result: Any) -> None:
            if not await _finish(session, scope, owner, codec.encode_result(result)):
                raise LeaseLost()

        context.before_commit.append(complete)
        try:
            return await call_next(context)
        except AppError as error:
            if error.category in STORED_CATEGORIES:
                async with write_transaction(self._engine) as session:
                    await _finish(session, scope, owner, codec.encode_error(error.to_data()))
            else:
                await self._release(scope, owner)
            raise
        except BaseException:
            await asyncio.shield(self._release(scope, owner))
            raise

    def _scope(self, envelope: Envelope[Any], fingerprint: str) -> _Scope:
        assert envelope.idempotency_key is not None
        principal = envelope.principal
        if principal is None:
            return _Scope(
                "", f"anonymous:{fingerprint[:32]}", envelope.pattern, envelope.idempotency_key
            )
        return _Scope(
            principal.organization_id, principal.user_id, envelope.pattern, envelope.idempotency_key
        )

    async def _claim(
        self, scope: _Scope, fingerprint: str, envelope: Envelope[Any]
    ) -> bytes | None:
        """Claim the key for this request; or return the stored reply to replay; or raise."""
        now = utcnow()
        lease = (
            envelope.deadline - now.timestamp() + self._grace
            if envelope.deadline is not None
            else self._default_lease
        )
        claim = {
            "fingerprint": fingerprint,
            "state": IN_FLIGHT,
            "owner": envelope.message_id,
            "reply": None,
            "created_at": now,
            "locked_until": now + timedelta(seconds=max(lease, self._grace)),
            "expires_at": now + self._ttl,
        }
        for _ in range(2):  # a concurrent first insert (PostgreSQL) is read on the second pass
            try:
                async with write_transaction(self._engine) as session:
                    row = await session.scalar(
                        select(IdempotencyKey).where(*_matches(scope)).with_for_update()
                    )
                    if row is None:
                        session.add(IdempotencyKey(**_columns(scope), **claim))
                        return None
                    if row.expires_at <= now or (
                        row.state == IN_FLIGHT and row.locked_until <= now
                    ):
                        for name, value in claim.items():
                            setattr(row, name, value)
                        return None
                    if row.fingerprint != fingerprint:
                        raise KeyReusedDifferently()
                    if row.state == COMPLETED and row.reply is not None:
                        return row.reply
                    wait = max(1.0, (row.locked_until - now).total_seconds())
                    raise KeyInFlight(retry_after=min(wait, 60.0))
            except IntegrityError:
                continue
        raise KeyInFlight(retry_after=1.0)

    def _replay(self, stored: bytes, context: Context) -> Replayed:
        try:
            result, _ = codec.decode_reply(stored, context.result_type)
        except AppError as error:
            error.replayed = True
            raise
        return Replayed(result)

    async def _release(self, scope: _Scope, owner: str) -> None:
        try:
            async with write_transaction(self._engine) as session:
                await session.execute(
                    delete(IdempotencyKey).where(*_matches(scope), IdempotencyKey.owner == owner)
                )
        except Exception:
            # The lease expires by itself; a failed release only delays a retry.
            logger.bind(cmd=scope.pattern).opt(exception=True).warning("idempotency release failed")


async def purge_expired(engine: AsyncEngine, *, batch: int = 1000) -> int:
    """Delete expired keys in batches of `batch` rows, each batch its own short transaction."""
    purged = 0
    while True:
        async with write_transaction(engine) as session:
            expired = (
                select(IdempotencyKey.id)
                .where(IdempotencyKey.expires_at <= utcnow())
                .limit(batch)
                .scalar_subquery()
            )
            result = await session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired))
            )
        deleted: int = result.rowcount  # type: ignore[attr-defined]
        purged += deleted
        if deleted < batch:
            return purged


async def purge_forever(engine: AsyncEngine, interval: float) -> None:
    """The background purge: every `interval` seconds, off the request path."""
    while True:
        await asyncio.sleep(interval)
        try:
            purged = await purge_expired(engine)
            if purged:
                logger.bind(purged=purged).info("expired idempotency keys purged")
        except Exception:
            logger.opt(exception=True).warning("idempotency purge failed; will try again")


async def _finish(session: AsyncSession, scope: _Scope, owner: str, reply: bytes) -> bool:
    result = await session.execute(
        update(IdempotencyKey)
        .where(*_matches(scope), IdempotencyKey.owner == owner, IdempotencyKey.state == IN_FLIGHT)
        .values(state=COMPLETED, reply=reply)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _matches(scope: _Scope) -> tuple[Any, ...]:
    return (
        IdempotencyKey.organization_id == scope.organization_id,
        IdempotencyKey.user_id == scope.user_id,
        IdempotencyKey.pattern == scope.pattern,
        IdempotencyKey.key == scope.key,
    )


def _columns(scope: _Scope) -> dict[str, str]:
    return {
        "organization_id": scope.organization_id,
        "user_id": scope.user_id,
        "pattern": scope.pattern,
        "key": scope.key,
    }
