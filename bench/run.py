"""The performance suite: every scenario, the project beside its reference, in one run.

    make bench                      # = uv run python bench/run.py --write
    uv run python bench/run.py --seconds 5 --runs 3 [--only get,post] [--write]

Needs `wrk` (Debian package `wrk`) for the HTTP scenarios. Everything runs on this machine over
loopback: each server is a real `uvicorn` process (one worker), load comes from wrk with one
thread. Project and reference are measured in the same run, interleaved, `--runs` times each;
the report gives medians. `--write` replaces the generated section of bench/RESULTS.md.

Scenarios (see bench/RESULTS.md for the targets):
- bus: one command through the full send and handle chains versus a direct await (in process);
- ping: the real gateway + bus + a trivial handler versus the same route awaiting it directly;
- get: authenticated GET /events/{id} (the real app) versus raw aiosqlite in bare Litestar;
- post: POST /events without and with Idempotency-Key versus a raw aiosqlite insert + commit;
- search: GET /events?limit=20&search=... over 100k events, one connection;
- burst: GET /events/{id} while 16 clients log in, versus the same GET alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bus_micro  # noqa: E402
from bench.nats_hop import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN_MARK = "<!-- bench/run.py: begin -->"
END_MARK = "<!-- bench/run.py: end -->"
SECRET = "bench-secret-that-is-long-enough-0123456789"
PASSWORD = "Password123!"
ORG = "10000000-0000-0000-0000-000000000002"  # the seeds' Tech Innovators
USER = "20000000-0000-0000-0000-000000000004"  # user@techinnovators.com
USER_EMAIL = "user@techinnovators.com"
EVENT = "00000000-0000-0000-0000-000000000003"  # that user's seeded event
BODY = json.dumps(
    {
        "title": "Benchmark event",
        "description": "Created by the benchmark suite.",
        "location": "Loopback",
        "startDate": "2027-09-01T09:00:00Z",
        "endDate": "2027-09-01T10:00:00Z",
    }
)


# Servers -----------------------------------------------------------------------------------------


@contextmanager
def server(app: str, env: dict[str, str], ready: str = "/health/live") -> Iterator[str]:
    """`uvicorn <app>` on a free loopback port, one worker, logs to /dev/null."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{app} exited with {process.returncode}")
            try:
                if httpx.get(url + ready, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def app_env(database: Path, **extra: str) -> dict[str, str]:
    """The app as an operator runs it, but for: a bench secret, a fast-enough bcrypt (the
    seeds' cost, 10), no rate limit (one client at thousands of requests a second would be
    throttled), and logs at INFO as JSON to /dev/null."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "JWT_SECRET": SECRET,
        "BCRYPT_ROUNDS": "10",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOGIN_FAILURES_PER_15MIN": "0",
        "LOGIN_CONCURRENCY_PER_CLIENT": "0",
        **extra,
    }


def raw_env(database: Path) -> dict[str, str]:
    return {"BENCH_DB": str(database), "BENCH_ORG": ORG, "BENCH_USER": USER}


def login(url: str) -> str:
    response = httpx.post(
        url + "/auth/login", json={"email": USER_EMAIL, "password": PASSWORD}, timeout=10
    )
    response.raise_for_status()
    token: str = response.json()["accessToken"]
    return token


# wrk ---------------------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Sample:
    name: str
    loads: list[Load] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(load.rps for load in self.loads)

    @property
    def p50(self) -> float:
        return statistics.median(load.p50_ms for load in self.loads)

    @property
    def p99(self) -> float:
        return statistics.median(load.p99_ms for load in self.loads)

    @property
    def errors(self) -> int:
        return sum(load.errors for load in self.loads)


LUA = """
local counter = 0
local prefix = tostring(math.random(1, 1000000000))
wrk.method = "{method}"
wrk.body = {body}
{headers}
request = function()
  counter = counter + 1
  {keyed}
  return wrk.format()
end
"""


def wrk_script(
    folder: Path, method: str, headers: dict[str, str], body: str | None, keyed: bool
) -> Path:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = folder / f"{uuid.uuid4().hex}.lua"
    script.write_text(
        LUA.format(
            method=method,
            body="nil" if body is None else "[[" + body + "]]",
            headers=lines,
            keyed='wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter' if keyed else "",
        )
    )
    return script


def wrk(url: str, script: Path, *, connections: int, seconds: float) -> Load:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _latency(output, "50%")
    p99 = _latency(output, "99%")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(rps, p50, p99, errors)


def _latency(output: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert found, output
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# Data --------------------------------------------------------------------------------------------


def migrated_database(folder: Path, name: str) -> Path:
    """A database file migrated and seeded by the app's own start-up."""
    database = folder / f"{name}.db"
    with server("app.main:app", app_env(database)):
        pass
    return database


def add_events(database: Path, count: int, *, needle_every: int = 1000) -> None:
    """`count` events for the bench user's organization; every `needle_every`-th has the word
    "needle" in its description (the search finds 0.1% of them)."""
    start = datetime(2027, 1, 1, 9, tzinfo=UTC)

    def text(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    rows = []
    for n in range(count):
        moment = start + timedelta(minutes=n)
        rows.append(
            (
                str(uuid.uuid4()),
                ORG,
                USER,
                f"Generated event {n}",
                f"Agenda item {n}" + (" with a needle in it" if n % needle_every == 0 else ""),
                "Somewhere",
                text(moment),
                text(moment + timedelta(hours=1)),
                "DRAFT",
                None,
                text(moment),
                text(moment),
            )
        )
    with sqlite3.connect(database) as db:
        db.executemany("INSERT INTO events_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)


# Scenarios ---------------------------------------------------------------------------------------


@dataclass
class Report:
    args: argparse.Namespace
    sections: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str, bool]] = field(default_factory=list)

    def table(self, title: str, samples: list[Sample], notes: str = "") -> None:
        lines = [f"### {title}", ""]
        if notes:
            lines += [notes, ""]
        lines += ["| | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|"]
        for sample in samples:
            lines.append(
                f"| {sample.name} | {sample.rps:,.0f} | {sample.p50:.2f} | {sample.p99:.2f} | "
                f"{sample.errors} |"
            )
        self.sections.append("\n".join(lines))
        print("\n".join(lines), flush=True)

    def target(self, what: str, measured: str, held: bool) -> None:
        self.verdicts.append((what, measured, held))
        print(f"  target {what}: {measured} -> {'met' if held else 'MISSED'}", flush=True)


def interleaved(
    pairs: list[tuple[Sample, str, Path]], *, runs: int, connections: int, seconds: float
) -> None:
    for _ in range(runs):
        for sample, url, script in pairs:
            sample.loads.append(wrk(url, script, connections=connections, seconds=seconds))


def scenario_bus(report: Report) -> None:
    result = asyncio.run(bus_micro.measure(20000, max(3, report.args.runs)))
    quiet = asyncio.run(bus_micro.measure(20000, max(3, report.args.runs), "WARNING"))
    lines = [
        "### bus: one command through both chains, in process (no DB, no key)",
        "",
        "| | us per command |",
        "|---|---:|",
        f"| direct await of the handler | {result['direct_us']:.2f} |",
        f"| bus, logs at INFO (a `sent` and a `handled` line) | {result['bus_us']:.1f} |",
        f"| bus, logs at WARNING (no per-command lines) | {quiet['bus_us']:.1f} |",
    ]
    report.sections.append("\n".join(lines))
    print("\n".join(lines), flush=True)
    report.target(
        "bus chain <= 10 us over a direct await",
        f"{result['overhead_us']:.1f} us with INFO logs, {quiet['overhead_us']:.1f} us without",
        result["overhead_us"] <= 10,
    )


def scenario_ping(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "ping")
    env, quiet_env = app_env(database), app_env(database, LOG_LEVEL="WARNING")
    script = wrk_script(folder, "GET", {}, None, keyed=False)
    bus, direct = Sample("gateway + bus + handler"), Sample("gateway + handler (direct)")
    quiet_bus = Sample("gateway + bus + handler, logs at WARNING")
    quiet_direct = Sample("gateway + handler (direct), logs at WARNING")
    with (
        server("bench.apps.ping:bus_app", env) as bus_url,
        server("bench.apps.ping:direct_app", env) as direct_url,
        server("bench.apps.ping:bus_app", quiet_env) as quiet_bus_url,
        server("bench.apps.ping:direct_app", quiet_env) as quiet_direct_url,
    ):
        interleaved(
            [
                (bus, bus_url + "/bench/ping", script),
                (direct, direct_url + "/bench/ping", script),
                (quiet_bus, quiet_bus_url + "/bench/ping", script),
                (quiet_direct, quiet_direct_url + "/bench/ping", script),
            ],
            runs=report.args.runs,
            connections=64,
            seconds=report.args.seconds,
        )
    report.table("ping: GET /bench/ping, 64 connections", [bus, direct, quiet_bus, quiet_direct])
    ratio = bus.rps / direct.rps
    report.target("ping >= 0.85x the direct route", f"{ratio:.2f}x", ratio >= 0.85)


def scenario_get(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "get")
    project, reference = Sample("EventBoard (JWT, gateway, bus, DB)"), Sample("raw aiosqlite")
    quiet = Sample("EventBoard, logs at WARNING (no request/command lines)")
    with (
        server("app.main:app", app_env(database)) as app_url,
        server("app.main:app", app_env(database, LOG_LEVEL="WARNING")) as quiet_url,
        server("bench.apps.raw:app", raw_env(database), ready=f"/events/{EVENT}") as raw_url,
    ):
        token = login(app_url)
        authed = wrk_script(folder, "GET", {"Authorization": f"Bearer {token}"}, None, False)
        plain = wrk_script(folder, "GET", {}, None, keyed=False)
        interleaved(
            [
                (project, f"{app_url}/events/{EVENT}", authed),
                (reference, f"{raw_url}/events/{EVENT}", plain),
                (quiet, f"{quiet_url}/events/{EVENT}", authed),
            ],
            runs=report.args.runs,
            connections=64,
            seconds=report.args.seconds,
        )
    report.table("get: GET /events/{id}, 64 connections", [project, reference, quiet])
    ratio = project.rps / reference.rps
    report.target("GET >= 0.40x raw aiosqlite", f"{ratio:.2f}x", ratio >= 0.40)
    p99 = project.p99 / reference.p99
    report.target("GET p99 <= 2x the reference's", f"{p99:.2f}x", p99 <= 2)


def scenario_post(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "post")
    unkeyed, keyed = Sample("EventBoard, no key"), Sample("EventBoard, Idempotency-Key")
    reference = Sample("raw aiosqlite insert + commit")
    quiet = Sample("EventBoard, no key, logs at WARNING")
    json_header = {"Content-Type": "application/json"}
    with (
        server("app.main:app", app_env(database)) as app_url,
        server("app.main:app", app_env(database, LOG_LEVEL="WARNING")) as quiet_url,
        server("bench.apps.raw:app", raw_env(database), ready=f"/events/{EVENT}") as raw_url,
    ):
        token = login(app_url)
        headers = {**json_header, "Authorization": f"Bearer {token}"}
        plain = wrk_script(folder, "POST", headers, BODY, keyed=False)
        with_key = wrk_script(folder, "POST", headers, BODY, keyed=True)
        raw = wrk_script(folder, "POST", json_header, BODY, keyed=False)
        interleaved(
            [
                (unkeyed, f"{app_url}/events", plain),
                (keyed, f"{app_url}/events", with_key),
                (reference, f"{raw_url}/events", raw),
                (quiet, f"{quiet_url}/events", plain),
            ],
            runs=report.args.runs,
            connections=16,
            seconds=report.args.seconds,
        )
    report.table("post: POST /events, 16 connections", [unkeyed, keyed, reference, quiet])
    ratio = unkeyed.rps / reference.rps
    report.target("POST >= 0.30x the raw insert", f"{ratio:.2f}x", ratio >= 0.30)
    cost = unkeyed.rps / keyed.rps
    report.target("keyed create <= 1.2x an unkeyed one", f"{cost:.2f}x", cost <= 1.2)


def scenario_search(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "search")
    add_events(database, 100_000)
    project, reference = Sample("EventBoard, search=needle"), Sample("raw aiosqlite, LIKE scan")
    broad = Sample("EventBoard, search=Generated (every event matches)")
    query = "/events?limit=20&search=needle"
    with (
        server("app.main:app", app_env(database)) as app_url,
        server("bench.apps.raw:app", raw_env(database), ready=f"/events/{EVENT}") as raw_url,
    ):
        token = login(app_url)
        authed = wrk_script(folder, "GET", {"Authorization": f"Bearer {token}"}, None, False)
        plain = wrk_script(folder, "GET", {}, None, keyed=False)
        interleaved(
            [
                (project, app_url + query, authed),
                (reference, raw_url + query, plain),
                (broad, app_url + "/events?limit=20&search=Generated", authed),
            ],
            runs=report.args.runs,
            connections=1,
            seconds=report.args.seconds,
        )
    report.table(
        "search: GET /events?limit=20&search=... over 100k events, 1 connection",
        [project, reference, broad],
        "100,000 events in one organization; `needle` is in 100 of them, `Generated` in all. "
        "The app finds text of 3+ characters through SQLite's trigram index (migration 0003); "
        "the reference scans with LIKE, as the app did before the index.",
    )
    report.target("search p50 <= 20 ms", f"{project.p50:.1f} ms", project.p50 <= 20)


def scenario_burst(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "burst")
    alone, burst = Sample("GET alone"), Sample("GET during 16 concurrent logins")
    logins = Sample("the logins (bcrypt, cost 10)")
    with server("app.main:app", app_env(database)) as app_url:
        token = login(app_url)
        get_script = wrk_script(folder, "GET", {"Authorization": f"Bearer {token}"}, None, False)
        login_body = json.dumps({"email": USER_EMAIL, "password": PASSWORD})
        login_script = wrk_script(
            folder, "POST", {"Content-Type": "application/json"}, login_body, keyed=False
        )
        seconds = report.args.seconds
        for _ in range(report.args.runs):
            alone.loads.append(
                wrk(f"{app_url}/events/{EVENT}", get_script, connections=8, seconds=seconds)
            )
            background = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    "-c16",
                    f"-d{round(seconds) + 2}s",
                    "--timeout",
                    "10s",
                    "--latency",
                    "-s",
                    str(login_script),
                    f"{app_url}/auth/login",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)  # let the burst build up before measuring under it
            burst.loads.append(
                wrk(f"{app_url}/events/{EVENT}", get_script, connections=8, seconds=seconds)
            )
            output, _ = background.communicate(timeout=seconds + 60)
            logins.loads.append(
                Load(
                    float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
                    _latency(output, "50%"),
                    _latency(output, "99%"),
                    0,
                )
            )
    report.table(
        "burst: GET /events/{id} at 8 connections, alone and during a login burst",
        [alone, burst, logins],
    )
    ratio = burst.p99 / alone.p99
    report.target("GET p99 during the burst <= 2x without", f"{ratio:.2f}x", ratio <= 2)


HTTP_SCENARIOS = {
    "ping": scenario_ping,
    "get": scenario_get,
    "post": scenario_post,
    "search": scenario_search,
    "burst": scenario_burst,
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, {wrk_version.strip() or 'wrk'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="EventBoard's performance suite")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per scenario")
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    chosen = [name for name in args.only.split(",") if name] or ["bus", *HTTP_SCENARIOS]
    report = Report(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eventboard-bench-") as folder:
        for name in chosen:
            print(f"== {name}", flush=True)
            if name == "bus":
                scenario_bus(report)
            else:
                HTTP_SCENARIOS[name](report, Path(folder))
    elapsed = time.monotonic() - started
    command = "uv run python bench/run.py " + " ".join(
        [f"--seconds {args.seconds:g}", f"--runs {args.runs}"]
        + ([f"--only {args.only}"] if args.only else [])
    )
    verdicts = ["| target | measured | |", "|---|---|---|"] + [
        f"| {what} | {measured} | {'met' if held else '**missed**'} |"
        for what, measured, held in report.verdicts
    ]
    body = "\n\n".join(
        [
            f"Run on {datetime.now(UTC):%Y-%m-%d}, {machine()}; `{command}` "
            f"({elapsed / 60:.1f} min). Medians of {args.runs} interleaved runs.",
            "\n".join(verdicts),
            *report.sections,
        ]
    )
    print(body)
    if args.write:
        text = RESULTS.read_text()
        block = f"{BEGIN_MARK}\n{body}\n{END_MARK}"
        if BEGIN_MARK in text:
            head, rest = text.split(BEGIN_MARK, 1)
            text = head + block + rest.split(END_MARK, 1)[1]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
