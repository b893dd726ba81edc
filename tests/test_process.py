"""Draining on SIGTERM, as the server process does it: new commands refused at once, the server's
own shutdown only once the commands in flight are done and the delay has passed; a second
SIGTERM at once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from types import FrameType

from app.bus.bus import Bus
from app.process import drain_on_sigterm


async def test_sigterm_refuses_new_commands_at_once_and_hands_over_after_the_drain_and_delay():
    handed_over = asyncio.Event()
    calls: list[float] = []

    def uvicorns(signum: int, frame: FrameType | None) -> None:
        calls.append(time.perf_counter())
        handed_over.set()

    in_flight_done = asyncio.Event()

    async def in_flight(grace: float) -> None:
        await in_flight_done.wait()

    bus = Bus()
    before = signal.signal(signal.SIGTERM, uvicorns)
    try:
        restore = drain_on_sigterm(bus, in_flight, grace=5.0, delay=0.3)
        began = time.perf_counter()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0)  # let the handler's callback run on the loop
        refused_at_once = not bus.accepting
        still_serving = not handed_over.is_set()
        in_flight_done.set()
        await asyncio.wait_for(handed_over.wait(), timeout=5)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one goes straight through
        restore()
    finally:
        signal.signal(signal.SIGTERM, before)

    assert refused_at_once
    assert still_serving  # the socket stays open while commands are in flight
    assert calls[0] - began >= 0.3  # not before the delay
    assert len(calls) == 2
