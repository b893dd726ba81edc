"""The performance suite's own parts still work (it runs outside CI: it needs wrk and minutes):
its wrk output parsing, and the bus micro-benchmark on the app's real bus."""

from __future__ import annotations

import pytest

from bench import bus_micro
from bench.run import _latency

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:41234/events/x
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    27.01ms   10.11ms 120.53ms   80.12%
  Latency Distribution
     50%  850.00us
     75%   31.33ms
     90%   38.06ms
     99%    1.20s
  10585 requests in 5.00s, 7.02MB read
Requests/sec:   2117.00
"""


def test_wrk_latency_percentiles_are_read_in_milliseconds():
    assert _latency(WRK_OUTPUT, "50%") == pytest.approx(0.85)
    assert _latency(WRK_OUTPUT, "75%") == pytest.approx(31.33)
    assert _latency(WRK_OUTPUT, "99%") == pytest.approx(1200.0)


async def test_the_bus_micro_benchmark_measures_the_real_chain():
    result = await bus_micro.measure(200, 1)

    assert result["bus_us"] > result["direct_us"] > 0
    assert result["overhead_us"] == pytest.approx(result["bus_us"] - result["direct_us"])


def test_the_suite_starts_the_app_as_make_run_does():
    """The benchmarks measure the app as operators start it: uvicorn's flags in bench/run.py are
    the ones `make run` passes (read from make's own dry run)."""
    import shlex
    import subprocess
    from pathlib import Path

    from bench.run import SERVE_FLAGS

    dry_run = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", "PORT=3000"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    command = next(line for line in dry_run.splitlines() if "uvicorn app.main:app" in line)
    words = shlex.split(command)
    served = words[words.index("app.main:app") + 1 :]
    served.remove("--port")
    served.remove("3000")
    assert served == list(SERVE_FLAGS)


def test_the_log_line_micro_benchmark_times_each_variant():
    from bench import log_line

    result = log_line.measure(lines=50, runs=1)

    assert set(result) >= {"loguru + the app's text sink", "loguru + the app's json sink"}
    assert all(us > 0 for us in result.values())
