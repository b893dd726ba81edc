"""bcrypt, always in bcrypt's own small thread pool: 250 ms a hash at 12 rounds must not stall
the event loop, and a burst of logins must not take every core (nor the default executor, which
other work shares). With at most cores-1 threads, one core stays free for the loop; logins beyond
the pool queue for it, and wait within their deadline."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

T = TypeVar("T")


def pool_size(configured: int = 0) -> int:
    """`configured` threads, or with 0, one fewer than the cores (at least one)."""
    return configured or max(1, (os.cpu_count() or 2) - 1)


class PasswordHasher:
    def __init__(self, rounds: int, threads: int = 0) -> None:
        self._rounds = rounds
        self._decoy: bytes | None = None
        self.threads = pool_size(threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bcrypt")

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await self._run(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password. With no hash (unknown user), check a decoy so both take as long."""
        if hashed is None:
            if self._decoy is None:
                self._decoy = (await self.hash("decoy-password-for-unknown-users")).encode()
            await self._run(bcrypt.checkpw, password.encode(), self._decoy)
            return False
        return await self._run(bcrypt.checkpw, password.encode(), hashed.encode())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, work: Callable[[bytes, bytes], T], password: bytes, other: bytes) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, password, other)
