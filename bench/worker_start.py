"""Benchmark: how fast a worker starts. Import time of `app.worker` (what a worker loads) beside
`app.main` (the HTTP process, Litestar included), each in a fresh interpreter, and the time from
starting `python -m app.worker events` to its "worker ready" line (migrations checked, database
open, subscribed on NATS).

    uv run python bench/worker_start.py            # needs NATS on 127.0.0.1:4222
    uv run python bench/worker_start.py --runs 9

Medians of `--runs` runs, interleaved; wall-clock seconds, so noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-that-is-long-enough-0123456789"
IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def ready_seconds(database: Path, nats: str) -> float:
    environment = {
        **os.environ,
        "APP_ENV": "test",
        "JWT_SECRET": SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "BUS_TRANSPORT": "nats",
        "NATS_URL": nats,
        "NATS_SUBJECT_PREFIX": f"bench-{os.getpid()}",
    }
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.worker", "events"],
        cwd=ROOT,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "worker ready" in line:
                return time.perf_counter() - began
        raise RuntimeError(f"the worker exited with {process.wait()}")
    finally:
        process.terminate()
        process.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    nats = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    worker, gateway, ready = [], [], []
    with tempfile.TemporaryDirectory(prefix="eventboard-worker-start-") as folder:
        database = Path(folder) / "worker.db"
        ready_seconds(database, nats)  # the first start migrates the new database: not counted
        for _ in range(args.runs):
            worker.append(import_seconds("app.worker"))
            gateway.append(import_seconds("app.main"))
            ready.append(ready_seconds(database, nats))
    print(f"medians of {args.runs} runs, seconds")
    print(f"| import app.worker | {statistics.median(worker):.2f} |")
    print(f"| import app.main (HTTP process) | {statistics.median(gateway):.2f} |")
    print(f"| python -m app.worker events: start to ready | {statistics.median(ready):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
