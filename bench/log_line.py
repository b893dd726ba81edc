"""Micro-benchmark: one log line, as the request's line is written, in a tight loop.

    uv run python bench/log_line.py [--lines 20000] [--runs 5]

CPU time per line (process time; median of `--runs`, the variants interleaved), with the
request line's own fields:
- loguru's record alone (a sink that does nothing): what any loguru line costs;
- with the app's text sink, and with its JSON sink (both write to /dev/null, one `write` each);
- a DEBUG line while the level is INFO (dropped by loguru), and one the bus skips by asking
  `app.logging.enabled` first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import correlation
from app.logging import configure_logging, enabled
from app.settings import Settings

FIELDS = {
    "method": "GET",
    "route": "/events/{event_id}",
    "status": 200,
    "duration_ms": 1.23,
    "user_id": "20000000-0000-0000-0000-000000000004",
    "organization_id": "10000000-0000-0000-0000-000000000002",
    "event_id": "00000000-0000-0000-0000-000000000003",
    "cmd": "events.findOne",
    "module": "events",
    "attempts": 1,
    "outcome": "ok",
    "cmd_ms": 0.5,
}


def _timed(write: Callable[[], None], lines: int) -> float:
    started = time.process_time()
    for _ in range(lines):
        write()
    return (time.process_time() - started) / lines * 1e6


def measure(lines: int, runs: int) -> dict[str, float]:
    """Each variant's median over `runs`, the variants interleaved within every run (a drift of
    the machine's speed then touches them all alike)."""
    correlation.correlation_id.set("0b7c6a52-4f0e-4c8e-9b1e-2f6f1c3d4e5a")
    timings: dict[str, list[float]] = {}
    with open(os.devnull, "w") as devnull:

        def sink(kind: str) -> None:
            if kind == "none":
                logger.remove()
                logger.add(lambda _: None, format="{message}", level="INFO")
            else:
                configure_logging(Settings(log_format=kind), devnull)  # type: ignore[arg-type]

        def request_line() -> None:
            logger.info("request", **FIELDS)

        def dropped() -> None:
            logger.debug("sent", **FIELDS)

        def not_made() -> None:
            if enabled(10):
                logger.debug("sent", **FIELDS)

        variants = [
            ("loguru's record, a sink that does nothing", "none", request_line),
            ("loguru + the app's text sink", "text", request_line),
            ("loguru + the app's json sink", "json", request_line),
            ("a DEBUG line at INFO, dropped by loguru", "text", dropped),
            ("a DEBUG line at INFO, not made (`enabled(DEBUG)` asked first)", "text", not_made),
        ]
        for run in range(runs + 1):  # the first run warms up
            for name, kind, write in variants:
                sink(kind)
                spent = _timed(write, lines)
                if run:
                    timings.setdefault(name, []).append(spent)
        logger.remove()
    return {name: statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    for name, us in measure(args.lines, args.runs).items():
        print(f"{name:62} {us:6.1f} us/line")


if __name__ == "__main__":
    main()
