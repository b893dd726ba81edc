"""Chaos under load, at a larger size than the test suite runs: concurrent clients with mixed
traffic while faults are injected, then the invariants (see tests/e2e/test_chaos.py).

    uv run python bench/chaos.py                 # 40 clients x 60 operations
    uv run python bench/chaos.py --clients 80 --operations 100
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from app.settings import Fault

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.test_chaos import FAULTS, TIMEOUT, run_chaos


async def main(clients: int, operations: int) -> int:
    with tempfile.TemporaryDirectory() as directory:
        began = time.perf_counter()
        report = await run_chaos(
            Path(directory) / "chaos.db", clients=clients, operations=operations
        )
        elapsed = time.perf_counter() - began
    print(f"{clients} clients x {operations} operations, every route's deadline {TIMEOUT} s")
    print("faults: " + "; ".join(f.cmd + " " + _describe(f) for f in FAULTS))
    for line in report.lines():
        print(line)
    print(f"wall time: {elapsed:.1f} s")
    for violation in report.violations[:20]:
        print("VIOLATION", violation)
    return 1 if report.violations else 0


def _describe(fault: Fault) -> str:
    defaults = msgspec.structs.asdict(Fault(cmd=fault.cmd))
    changed = {k: v for k, v in msgspec.structs.asdict(fault).items() if v != defaults[k]}
    return ", ".join(f"{k}={v}" for k, v in changed.items())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--operations", type=int, default=60)
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments.clients, arguments.operations)))
