"""bcrypt, always in bcrypt's own small thread pool, behind admission control.

250 ms a hash at 12 rounds must not stall the event loop, and a burst of logins must not take
every core (nor the default executor, which other work shares). With at most cores-1 threads,
one core stays free for the loop.

Admission: a check that would wait longer than `max_wait` for a thread (the checks already
admitted, over the threads, times the measured time of one hash) is refused at once with 503
`OVERLOADED` and Retry-After, instead of queueing until its deadline and answering 504. So a
flood of logins costs its senders fast refusals, not everyone else a timeout.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from app.errors import Overloaded

T = TypeVar("T")

_DECOY_PASSWORD = b"decoy-password-for-unknown-users"
_SMOOTHING = 0.2
"""Weight of the newest hash in the running estimate of one hash's duration."""


def pool_size(configured: int = 0) -> int:
    """`configured` threads, or with 0, one fewer than the cores (at least one)."""
    return configured or max(1, (os.cpu_count() or 2) - 1)


class PasswordsBusy(Overloaded):
    default_code = "OVERLOADED"
    default_message = "Too many password checks at once; try again shortly"


class PasswordHasher:
    def __init__(self, rounds: int, threads: int = 0, *, max_wait: float = 2.0) -> None:
        self._rounds = rounds
        self.threads = pool_size(threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bcrypt")
        self._max_wait = max_wait
        self.admitted = 0
        """Checks queued or running now."""
        self.seconds_per_hash = 0.0
        """Running estimate of one hash's duration: the decoy's at first, then following the
        hashes that ran."""
        self._decoy: asyncio.Future[tuple[bytes, float]] | None = None

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await self._run(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password. With no hash (unknown user), check a decoy so both take as long."""
        if hashed is None:
            decoy = await self._prepared()
            await self._run(bcrypt.checkpw, password.encode(), decoy)
            return False
        return await self._run(bcrypt.checkpw, password.encode(), hashed.encode())

    def expected_wait(self) -> float:
        """How long a check admitted now would wait for a thread."""
        return self.admitted / self.threads * self.seconds_per_hash

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _prepared(self) -> bytes:
        """The decoy hash, made once in the pool before the first check; timing it gives
        admission control its first estimate (without one, a flood arriving before any hash
        finished would all be admitted). Concurrent first callers share it."""
        if self._decoy is None:
            loop = asyncio.get_running_loop()
            self._decoy = loop.run_in_executor(self._pool, _timed_decoy, self._rounds)
        decoy, seconds = await asyncio.shield(self._decoy)
        if not self.seconds_per_hash:
            self.seconds_per_hash = seconds
        return decoy

    async def _run(self, work: Callable[[bytes, bytes], T], password: bytes, other: bytes) -> T:
        await self._prepared()
        if self.expected_wait() > self._max_wait:
            raise PasswordsBusy(retry_after=1.0)
        self.admitted += 1
        try:
            result, seconds = await asyncio.get_running_loop().run_in_executor(
                self._pool, _timed, work, password, other
            )
        finally:
            self.admitted -= 1
        self.seconds_per_hash += _SMOOTHING * (seconds - self.seconds_per_hash)
        return result


def _timed_decoy(rounds: int) -> tuple[bytes, float]:
    return _timed(bcrypt.hashpw, _DECOY_PASSWORD, bcrypt.gensalt(rounds))


def _timed(work: Callable[[bytes, bytes], T], password: bytes, other: bytes) -> tuple[T, float]:
    started = time.perf_counter()
    result = work(password, other)
    return result, time.perf_counter() - started
