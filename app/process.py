"""What the HTTP server process (`uvicorn app.main:app`) does as a process: drain on SIGTERM and
tune the garbage collector once it has started. Not done by `create_app`, which tests call many
times in one process."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from types import FrameType

from loguru import logger

from app.bus.bus import Bus


def drain_on_sigterm(bus: Bus) -> Callable[[], None]:
    """On SIGTERM, stop taking new commands at once (readiness turns 503), then let the server's
    own handler (uvicorn's) begin its graceful shutdown. Returns a function that restores it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        bus.stop_accepting()
        logger.info("SIGTERM: draining; new commands are refused")
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


GC_THRESHOLDS = (20_000, 20, 20)
"""The server's cyclic GC: a young collection every 20,000 allocations instead of 700 (each
request allocates hundreds of objects), older generations correspondingly rarer."""


def tune_gc() -> None:
    """Once the server has started: everything built so far lives as long as the process, so
    move it out of the cyclic collector's way (`gc.freeze`), and collect young objects less
    often. Measured in bench/RESULTS.md: GET throughput up about 20%, p99 latency down by a
    third."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def tune_gc_on_startup() -> None:
    tune_gc()
