"""Micro-benchmark: one command through the bus's full send and handle chains, in process,
versus awaiting the same handler directly. No database work, no idempotency key.

    uv run python bench/bus_micro.py [--commands 20000] [--runs 5] [--log-level WARNING]
    uv run python bench/bus_micro.py --layers    # the chain built up one layer at a time

The bus is the app's own (`build_bus` with the app's settings and middleware, the in-process
transport); the handler is a bench-only read command that returns its payload. Logging is on at
INFO, as in production, written to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.bootstrap import build_bus  # noqa: E402
from app.bus.bus import Policy  # noqa: E402
from app.bus.pipeline import Context  # noqa: E402
from app.bus.transports.local import LocalTransport  # noqa: E402
from app.identity import Principal, Role  # noqa: E402
from app.logging import configure_logging  # noqa: E402
from app.process import tune_gc  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.storage.connect import open_database  # noqa: E402


class Ping(msgspec.Struct, frozen=True):
    value: int


async def ping(payload: Ping, context: Context) -> int:
    return payload.value


PRINCIPAL = Principal(
    user_id="00000000-0000-0000-0000-0000000000aa",
    email="bench@example.com",
    role=Role.USER,
    organization_id="00000000-0000-0000-0000-0000000000bb",
)
PING = {"cmd": "bench.ping"}
POLICY = Policy(timeout=5.0, attempts=3)


async def measure(commands: int, runs: int, log_level: str = "INFO") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            app_env="test",
            database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
            jwt_secret="bench-secret-that-is-long-enough-0123456789",
            log_level=log_level,
        )
        with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 (set-up, before timing)
            configure_logging(settings, devnull)
            database = open_database(settings.database_url)
            bus = build_bus(settings, database).bus
            bus.register(PING, Ping, ping, read_only=True)
            bus.connect(LocalTransport(bus))
            payload = Ping(1)

            async def via_bus(n: int) -> float:
                started = time.process_time()
                for _ in range(n):
                    await bus.send(PING, payload, principal=PRINCIPAL, policy=POLICY)
                return (time.process_time() - started) / n

            async def direct(n: int) -> float:
                context = Context(envelope=None, read_only=True)  # type: ignore[arg-type]
                started = time.process_time()
                for _ in range(n):
                    await ping(payload, context)
                return (time.process_time() - started) / n

            await via_bus(1000)  # warm up
            await direct(1000)
            tune_gc()  # as the server process does once started
            bus_us: list[float] = []
            direct_us: list[float] = []
            for _ in range(runs):  # interleaved
                bus_us.append(await via_bus(commands) * 1e6)
                direct_us.append(await direct(commands) * 1e6)
            await database.close()
            logger.remove()  # its sink is the file about to close
    return {
        "bus_us": statistics.median(bus_us),
        "direct_us": statistics.median(direct_us),
        "overhead_us": statistics.median(b - d for b, d in zip(bus_us, direct_us, strict=True)),
        "runs": runs,
        "commands": commands,
    }


async def layers(commands: int, runs: int, log_level: str) -> list[tuple[str, float]]:
    """us per command for the bare bus, then with the app's parts added one by one (the same
    parts `build_bus` makes): the median of `runs` sweeps over all of them."""
    from app.bus.bus import Bus
    from app.bus.idempotency import IdempotencyMiddleware
    from app.bus.transaction import TransactionMiddleware

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            app_env="test",
            database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
            jwt_secret="bench-secret-that-is-long-enough-0123456789",
            log_level=log_level,
        )
        with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 (set-up, before timing)
            configure_logging(settings, devnull)
            database = open_database(settings.database_url)
            parts = build_bus(settings, database)
            idempotency = IdempotencyMiddleware(database, secret="x" * 32, ttl=60)
            transaction = TransactionMiddleware(database)
            steps: list[tuple[str, dict[str, Any]]] = [
                ("bare bus (envelope, timer, metrics)", {}),
                ("+ breaker and retries", {"breakers": parts.breakers, "retries": _retries()}),
                ("+ idempotency (no key)", {"handle_middleware": [idempotency]}),
                ("+ transaction (unused)", {"handle_middleware": [idempotency, transaction]}),
            ]
            buses = []
            options: dict[str, Any] = {}
            for name, more in steps:
                options |= more
                bus = Bus(**options)
                bus.register(PING, Ping, ping, read_only=True)
                bus.connect(LocalTransport(bus))
                buses.append((name, bus))
            app_bus = parts.bus
            app_bus.register(PING, Ping, ping, read_only=True)
            app_bus.connect(LocalTransport(app_bus))
            buses.append(("the app's bus (build_bus)", app_bus))
            timings: list[list[float]] = [[] for _ in buses]
            tune_gc()
            for sweep in range(runs + 1):  # the first sweep warms up
                for index, (_, bus) in enumerate(buses):
                    started = time.process_time()
                    for _ in range(commands):
                        await bus.send(PING, Ping(1), principal=PRINCIPAL, policy=POLICY)
                    if sweep:
                        timings[index].append((time.process_time() - started) / commands * 1e6)
            await database.close()
            logger.remove()
    return [
        (name, statistics.median(times)) for (name, _), times in zip(buses, timings, strict=True)
    ]


def _retries() -> Any:
    from app.bus.retry import Retries

    return Retries()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--layers", action="store_true", help="cost of each layer, cumulative")
    args = parser.parse_args()
    if args.layers:
        previous = 0.0
        for name, us in asyncio.run(layers(args.commands, args.runs, args.log_level)):
            print(f"{name:38} {us:6.1f} us/command  (+{us - previous:.1f})")
            previous = us
        return
    result = asyncio.run(measure(args.commands, args.runs, args.log_level))
    print(
        f"bus full chain: {result['bus_us']:.1f} us/command; direct await: "
        f"{result['direct_us']:.2f} us; overhead {result['overhead_us']:.1f} us "
        f"(median of {result['runs']} runs x {result['commands']} commands)"
    )


if __name__ == "__main__":
    main()
