"""Test and development aids: the wire round-trip transport, and fault injection.

`WireRoundTripTransport`: in-process, but every envelope, result and error crosses the wire codec,
so anything that could not cross a process boundary (an ORM row, a dict where a Struct belongs, an
exception that is not an AppError) fails here exactly as it would over a real transport.

`FaultMiddleware` (handle side, from `BUS_FAULTS`; refused in production): delays and errors per
pattern, to see timeouts, retries and error handling work without stopping a real service.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger

from app.bus import codec
from app.bus.bus import Outcome
from app.bus.pipeline import Context, HandleNext
from app.bus.transports.local import LocalTransport
from app.database import sqlite_error
from app.errors import AppError, Internal, Unavailable
from app.settings import Fault

if TYPE_CHECKING:
    from app.bus.envelope import Envelope


class WireRoundTripTransport(LocalTransport):
    async def request(self, envelope: Envelope[Any]) -> Outcome:
        self._enter()
        try:
            return await self._round_trip(envelope)
        finally:
            self._leave()

    async def _round_trip(self, envelope: Envelope[Any]) -> Outcome:
        registration = self._bus.registration(envelope.pattern)
        try:
            incoming = codec.decode_envelope(
                codec.encode_envelope(envelope), registration.payload_type
            )
        except msgspec.ValidationError as exc:
            raise Internal(
                f"payload of {envelope.pattern} does not fit its contract: {exc}"
            ) from None
        try:
            outcome = await self._bus.dispatch(incoming)
            reply = codec.encode_result(outcome.result, replayed=outcome.replayed)
        except AppError as exc:
            reply = codec.encode_error(exc.to_data())
        result, replayed = codec.decode_reply(reply, registration.result_type)
        return Outcome(result, replayed=replayed)


class FaultMiddleware:
    def __init__(
        self,
        faults: Sequence[Fault],
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._faults = {fault.cmd: fault for fault in faults}
        self._failures_left = {fault.cmd: fault.fail_times for fault in faults}
        self._rand = rand
        self._sleep = sleep
        self.injected = 0
        """How many faults (delays and errors) were injected: for test and chaos reports."""

    def applies_to(self, pattern: str, read_only: bool) -> bool:
        return pattern in self._faults

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        fault = self._faults.get(context.envelope.pattern)
        if fault is None:
            return await call_next(context)
        delayed = fault.delay_ms > 0 and (fault.delay_rate >= 1 or self._rand() < fault.delay_rate)
        if delayed and not fault.after_handler:
            self.injected += 1
            logger.bind(cmd=fault.cmd, delay_ms=fault.delay_ms).warning("fault injected: delay")
            await self._sleep(fault.delay_ms / 1000)
        if fault.error is not None and self._should_fail(fault):
            self.injected += 1
            raise _error(fault)
        result = await call_next(context)
        if delayed and fault.after_handler:
            self.injected += 1
            await self._sleep(fault.delay_ms / 1000)
        return result

    def _should_fail(self, fault: Fault) -> bool:
        if self._failures_left[fault.cmd] > 0:
            self._failures_left[fault.cmd] -= 1
            return True
        return fault.error_rate > 0 and self._rand() < fault.error_rate


def _error(fault: Fault) -> Exception:
    if fault.error == "unavailable":
        return Unavailable(
            f"Injected fault: {fault.cmd} is unavailable", code="INJECTED_FAULT", retry_after=1
        )
    if fault.error == "locked":
        return sqlite_error(sqlite3.OperationalError("database is locked (injected fault)"))
    return RuntimeError(f"injected internal error in {fault.cmd}")
