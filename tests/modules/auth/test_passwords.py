"""bcrypt's own pool: a login burst runs at most `threads` hashes at once, never on the loop's
thread, and the event loop keeps serving other work meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time

import bcrypt
import pytest

from app.modules.auth.passwords import PasswordHasher, pool_size


def test_the_default_pool_leaves_a_core_free() -> None:
    import os

    assert pool_size(0) == max(1, (os.cpu_count() or 2) - 1)
    assert pool_size(3) == 3


async def test_a_burst_runs_at_most_pool_size_hashes_at_once(monkeypatch: pytest.MonkeyPatch):
    hasher = PasswordHasher(rounds=4, threads=2)
    hashed = (await hasher.hash("Burst123!")).encode()
    lock = threading.Lock()
    running, most, threads = 0, 0, set()
    real_checkpw = bcrypt.checkpw

    def checkpw(password: bytes, stored: bytes) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread().name)
        try:
            time.sleep(0.02)  # a slow hash, holding its pool thread (not the loop)
            return real_checkpw(password, stored)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    beat = asyncio.create_task(ticker())
    results = await asyncio.gather(*(hasher.verify("Burst123!", hashed.decode()) for _ in range(8)))
    beat.cancel()
    hasher.close()

    assert results == [True] * 8
    assert most == 2
    assert all(name.startswith("bcrypt") for name in threads)
    assert ticks > 100  # the loop went on running other work throughout the burst
