"""uvicorn's event loops under load, for handlers that finish without waiting on anything.

    uv run python bench/loop_tail.py [--seconds 8] [--runs 3]

The same bare Litestar route (`bench/apps/bare.py`) served by uvicorn on uvloop and on the
stdlib asyncio loop, and the app's own GET /events/{id} on each: wrk at 64 connections,
interleaved, reporting p50, p99, p99.9 and the slowest request. (Why `make run` uses the stdlib
loop: see bench/RESULTS.md.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    EVENT,
    SERVE_FLAGS,
    _wrk_command,
    app_env,
    login,
    migrated_database,
    server,
    wrk_script,
)

PERCENTILES = """
done = function(summary, latency, requests)
  io.write(string.format("p50=%.1f p99=%.1f p99.9=%.1f max=%.1f\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
"""


def flags(loop: str) -> tuple[str, ...]:
    chosen = list(SERVE_FLAGS)
    chosen[chosen.index("--loop") + 1] = loop
    return tuple(chosen)


def tails(url: str, script: Path, seconds: int) -> str:
    output = subprocess.run(
        _wrk_command(url, script, 64, seconds), capture_output=True, text=True, check=True
    ).stdout
    return output.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        database = migrated_database(folder, "loops")
        with (
            server("bench.apps.bare:app", {}, "/plain", flags("uvloop")) as bare_uv,
            server("bench.apps.bare:app", {}, "/plain", flags("asyncio")) as bare_std,
            server("app.main:app", app_env(database), flags=flags("uvloop")) as app_uv,
            server("app.main:app", app_env(database), flags=flags("asyncio")) as app_std,
        ):
            plain = wrk_script(folder, "GET", {}, None, keyed=False)
            token = {"Authorization": f"Bearer {login(app_uv.url)}"}
            authed = wrk_script(folder, "GET", token, None, keyed=False)
            for script in (plain, authed):
                script.write_text(script.read_text() + PERCENTILES)
            targets = [
                ("bare route, uvloop", bare_uv.url + "/plain", plain),
                ("bare route, asyncio", bare_std.url + "/plain", plain),
                ("GET /events/{id}, uvloop", f"{app_uv.url}/events/{EVENT}", authed),
                ("GET /events/{id}, asyncio", f"{app_std.url}/events/{EVENT}", authed),
            ]
            for _ in range(args.runs):
                for title, url, script in targets:
                    print(f"{title:28} ms: {tails(url, script, args.seconds)}", flush=True)


if __name__ == "__main__":
    main()
