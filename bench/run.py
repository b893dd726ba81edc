"""The performance suite: every scenario, the project beside its reference, in one run.

    make bench                      # = uv run python bench/run.py --write
    uv run python bench/run.py --seconds 5 --runs 3 [--only ping,get] [--profile] [--write]
    uv run python bench/run.py --only ping,get,post --baseline 5b18ab2   # this tree vs a commit

Needs `wrk` (Debian package `wrk`) for the HTTP scenarios, and Node.js with npm for the NestJS
peer (built once into bench/.peer/, which git ignores). Everything runs on this machine over
loopback: each server is a real process started the way `make run` starts the app (uvicorn,
one worker, the same flags, default INFO text logs), load comes from wrk with one thread.
Project and reference are measured in the same run, interleaved, `--runs` times each, after a
warm-up run each; the report gives medians of req/s, p50, p99 and the servers' CPU time per
request (utime + stime from /proc, summed over every process of a target: both NestJS
processes). `--profile` adds, for the project's scenarios, where that CPU time goes (py-spy,
in microseconds per request by owner). `--write` replaces the generated section of
bench/RESULTS.md.

Scenarios (see bench/RESULTS.md for the targets):
- bus: one command through the bus (both sides, in process) versus a direct await;
- ping: the NestJS gateway -> TCP -> service peer of the seeds' architecture, versus our ping
  route through the gateway and the bus (and the same route awaiting its handler directly);
- get: authenticated GET /events/{id} (the real app) versus raw aiosqlite in bare Litestar;
- post: POST /events without and with Idempotency-Key versus a raw aiosqlite insert + commit;
- search: GET /events?limit=20&search=... over 100k events, one connection;
- burst: GET /events/{id} while 16 clients log in, versus the same GET alone;
- submit: POST /events/{id}/submit, which writes its history entry and emits a notification
  that the audit module enters, versus the same command before notifications existed (the
  commit NOTIFICATIONS_BASELINE, or `--baseline`); and the audit log's lag under that load.

`--baseline REF` also runs the app as it was at a git commit (extracted with `git archive`, run
with this environment's packages) beside this tree's, interleaved, in ping, get and post (and in
submit, in place of NOTIFICATIONS_BASELINE): the way to show a change costs nothing, on a
machine too noisy to compare separate runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bus_micro  # noqa: E402
from bench.nats_hop import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN_MARK = "<!-- bench/run.py: begin -->"
END_MARK = "<!-- bench/run.py: end -->"
PEER_SOURCE = Path(os.environ.get("NEST_PEER_DIR", ROOT.parent / "shared" / "peers" / "nest-tcp"))
PEER_BUILD = ROOT / "bench" / ".peer" / "nest-tcp"
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

NOTIFICATIONS_BASELINE = "a92fb2d"
"""The last commit before notifications: its submit changes the event and nothing else."""

SERVE_FLAGS = (
    "--host",
    "127.0.0.1",
    "--no-access-log",
    "--no-proxy-headers",
    "--loop",
    "asyncio",
    "--timeout-graceful-shutdown",
    "10",
)
"""uvicorn's flags as `make run` gives them (tests/test_bench.py checks they agree)."""
REFERENCE_FLAGS = (*SERVE_FLAGS[:4], "--loop", "uvloop", *SERVE_FLAGS[6:])
"""The raw reference keeps uvloop, its faster loop (it waits on a thread for every query)."""


# Servers -----------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    pids: list[int]
    """Every process whose CPU time counts for this target."""


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], name: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.1)


@contextmanager
def _running(
    commands: list[list[str]], env: dict[str, str], cwd: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [
        subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def server(
    app: str,
    env: dict[str, str],
    ready: str = "/health/live",
    flags: tuple[str, ...] = SERVE_FLAGS,
    tree: Path = ROOT,
) -> Iterator[Server]:
    """`uvicorn <app>` as `make run` starts the app, on a free loopback port, logs to
    /dev/null (the app's log lines are written as usual, to a sink that discards them).
    `tree`: the source tree to run (a `--baseline` commit's)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), *flags]
    with _running([command], env, tree) as processes:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url + ready, processes, app)
        yield Server(url, [process.pid for process in processes])


def build_peer() -> Path:
    """The NestJS peer, compiled once into bench/.peer/ (a copy of its source, never built in
    place: the source may be read-only)."""
    if (PEER_BUILD / "dist" / "gateway.js").exists() and (PEER_BUILD / "node_modules").exists():
        return PEER_BUILD
    if not (PEER_SOURCE / "package.json").exists():
        raise RuntimeError(f"the NestJS peer is not at {PEER_SOURCE} (set NEST_PEER_DIR)")
    shutil.rmtree(PEER_BUILD, ignore_errors=True)
    shutil.copytree(PEER_SOURCE, PEER_BUILD, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_BUILD, check=True)
    subprocess.run(["./node_modules/.bin/tsc", "-p", "."], cwd=PEER_BUILD, check=True)
    return PEER_BUILD


@contextmanager
def nest_peer() -> Iterator[Server]:
    """The NestJS gateway (Express) and its microservice (Transport.TCP), as the peer's README
    runs them."""
    folder = build_peer()
    service_port, port = free_port(), free_port()
    env = {"SVC_PORT": str(service_port), "PORT": str(port), "NODE_ENV": "production"}
    service = ["node", "dist/service.js"]
    gateway = ["node", "dist/gateway.js"]
    with _running([service, gateway], env, folder) as processes:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url + "/ping", processes, "the NestJS peer")
        yield Server(url, [process.pid for process in processes])


def raw_reference(database: Path) -> Any:
    """The raw aiosqlite reference, on uvloop."""
    return server(
        "bench.apps.raw:app", raw_env(database), ready=f"/events/{EVENT}", flags=REFERENCE_FLAGS
    )


def app_env(database: Path, **extra: str) -> dict[str, str]:
    """The app as `make run` runs it (INFO text logs), but for: a bench secret, the seeds' bcrypt
    cost (10), and no rate limits (one client at thousands of requests a second would be
    throttled, and login bursts from one client refused)."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "JWT_SECRET": SECRET,
        "BCRYPT_ROUNDS": "10",
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


# wrk and CPU time --------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float | None = None
    """Server CPU time per request, in microseconds."""


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
    def cpu_us(self) -> float | None:
        values = [load.cpu_us for load in self.loads if load.cpu_us is not None]
        return statistics.median(values) if values else None

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


def _wrk_command(url: str, script: Path, connections: int, seconds: float) -> list[str]:
    return [
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
    ]


def wrk(
    url: str, script: Path, *, connections: int, seconds: float, pids: list[int] | None = None
) -> Load:
    before = cpu_seconds(pids) if pids else 0.0
    output = subprocess.run(
        _wrk_command(url, script, connections, seconds),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    load = parse_wrk(output)
    if pids:
        requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
        load.cpu_us = (cpu_seconds(pids) - before) / max(1, requests) * 1e6
    return load


def parse_wrk(output: str) -> Load:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(rps, _latency(output, "50%"), _latency(output, "99%"), errors)


def _latency(output: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert found, output
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# Profiles ----------------------------------------------------------------------------------------

OWNERS = (
    ("the request's log line (loguru, our sink)", r"loguru/|app/logging\.py"),
    ("prometheus-client", r"prometheus_client/"),
    ("edge (correlation, metrics, log fields)", r"app/gateway/(edge|exchange)\.py"),
    ("gateway (auth, validation, controllers)", r"app/gateway/"),
    ("notifications (outbox, relay, subscribers)", r"app/bus/(outbox|subscribers)\.py"),
    ("bus (send and handle sides, middleware)", r"app/bus/"),
    ("database (statements, SQLite)", r"app/storage/|sqlite3"),
    ("module (handler, model, view)", r"app/modules/"),
    ("msgspec", r"msgspec"),
    ("Litestar (routing, request, response)", r"litestar/"),
    ("uvicorn (HTTP parsing, socket writes)", r"uvicorn/|uvloop|httptools"),
    ("asyncio (tasks, event loop)", r"asyncio/"),
)


def owners(raw: str) -> Counter[str]:
    """Samples of a py-spy raw profile by owner: each sample goes to the innermost frame that
    one of OWNERS claims (GC and C code count for whoever called them)."""
    found: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack:
            continue
        owner = "other (interpreter, GC)"
        for frame in reversed(stack.split(";")):
            claimed = [name for name, pattern in OWNERS if re.search(pattern, frame)]
            if claimed:
                owner = claimed[0]
                break
        found[owner] += int(count)
    return found


PROFILE_RATE = 200
"""py-spy samples a second."""
OUTSIDE_GIL = "outside the GIL (SQLite, system calls)"


def profile(
    target: Server, url: str, script: Path, *, connections: int, seconds: float
) -> tuple[float, dict[str, float]]:
    """CPU us per request, and where it goes: us per request by owner, from py-spy sampling
    only the thread that holds the GIL (`--gil`: Python's own work, in whichever thread) during
    one wrk run; what the process spent outside the GIL is the rest of its measured CPU."""
    output = Path(tempfile.mkstemp(suffix=".raw")[1])
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(target.pids[0]),
            "--duration",
            str(round(seconds)),
            "--rate",
            str(PROFILE_RATE),
            "--gil",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = cpu_seconds(target.pids)
    output_text = subprocess.run(
        _wrk_command(url, script, connections, seconds),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    spent = cpu_seconds(target.pids) - before
    requests = int(re.search(r"(\d+) requests in", output_text).group(1))  # type: ignore[union-attr]
    spy.wait(60)
    samples = owners(output.read_text())
    output.unlink()
    per_request = {owner: count / PROFILE_RATE / requests * 1e6 for owner, count in samples.items()}
    cpu_us = spent / requests * 1e6
    per_request[OUTSIDE_GIL] = max(0.0, cpu_us - sum(per_request.values()))
    return cpu_us, per_request


# Scenarios ---------------------------------------------------------------------------------------


@dataclass
class Report:
    args: argparse.Namespace
    sections: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str, bool]] = field(default_factory=list)
    baseline: Path | None = None
    """The `--baseline` commit's source tree."""

    @contextmanager
    def baseline_server(self, app: str, env: dict[str, str]) -> Iterator[Server | None]:
        if self.baseline is None:
            yield None
            return
        # A database of its own, migrated and seeded by the baseline itself (the seeds' ids are
        # fixed, so the same tokens and paths work): this tree's migrations may be newer.
        database = env["DATABASE_URL"].removesuffix(".db") + "-baseline.db"
        with server(app, {**env, "DATABASE_URL": database}, tree=self.baseline) as running:
            yield running

    def against_baseline(
        self,
        what: str,
        current: Sample,
        baseline: Sample | None,
        limit: float = 1.05,
    ) -> None:
        """CPU per request of this tree over the baseline's, as a target."""
        if baseline is None:
            return
        ratio = (current.cpu_us or 0) / (baseline.cpu_us or 1)
        self.target(
            f"{what} CPU per request <= {limit:.2f}x {self.args.baseline}'s",
            f"{ratio:.2f}x",
            ratio <= limit,
        )

    def table(self, title: str, samples: list[Sample], notes: str = "") -> None:
        lines = [f"### {title}", ""]
        if notes:
            lines += [notes, ""]
        lines += [
            "| | req/s | p50 ms | p99 ms | CPU us/request | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for sample in samples:
            cpu = f"{sample.cpu_us:,.0f}" if sample.cpu_us is not None else "-"
            lines.append(
                f"| {sample.name} | {sample.rps:,.0f} | {sample.p50:.2f} | {sample.p99:.2f} | "
                f"{cpu} | {sample.errors} |"
            )
        self.section("\n".join(lines))

    def section(self, text: str) -> None:
        self.sections.append(text)
        print(text, flush=True)

    def target(self, what: str, measured: str, held: bool) -> None:
        self.verdicts.append((what, measured, held))
        print(f"  target {what}: {measured} -> {'met' if held else 'MISSED'}", flush=True)

    def profiles(self, title: str, runs: list[tuple[str, float, dict[str, float]]]) -> None:
        """Where the CPU time of each profiled target goes, in us per request by owner."""
        names = [name for name, _ in OWNERS] + ["other (interpreter, GC)", OUTSIDE_GIL]
        header = "| owner | " + " | ".join(name for name, _, _ in runs) + " |"
        lines = [f"#### where the time goes: {title}", "", header]
        lines.append("|---|" + "---:|" * len(runs))
        for owner in names:
            cells = [f"{spent.get(owner, 0.0):.0f}" for _, _, spent in runs]
            if any(cell != "0" for cell in cells):
                lines.append(f"| {owner} | " + " | ".join(cells) + " |")
        lines.append(
            "| **total (CPU us/request)** | "
            + " | ".join(f"**{c:.0f}**" for _, c, _ in runs)
            + " |"
        )
        self.section("\n".join(lines))


def interleaved(
    targets: list[tuple[Sample, str, Path, list[int]]],
    *,
    runs: int,
    connections: int,
    seconds: float,
) -> None:
    for _, url, script, _ in targets:  # warm up (JIT, caches, first connections)
        wrk(url, script, connections=connections, seconds=2)
    for run in range(runs):
        # Each run starts with the next target: no target always goes first (a target's place
        # in the round was worth a few percent of CPU per request, measured with one tree as
        # both project and baseline).
        shift = run % len(targets)
        for sample, url, script, pids in targets[shift:] + targets[:shift]:
            sample.loads.append(
                wrk(url, script, connections=connections, seconds=seconds, pids=pids)
            )


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
        db.executemany(
            "INSERT INTO events_events (id, organization_id, created_by_id, title, description, "
            "location, start_date, end_date, status, rejection_reason, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )


def draft_ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT id FROM events_events WHERE status = 'DRAFT' AND created_by_id = ? "
            "AND title LIKE 'Generated event %' ORDER BY id",
            (USER,),
        ).fetchall()
    return [str(row[0]) for row in rows]


SUBMIT_LUA = """
local ids = {{{ids}}}
local counter = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  counter = counter + 1
  return wrk.format(nil, "/events/" .. ids[(counter - 1) % #ids + 1] .. "/submit")
end
"""


def submit_script(folder: Path, token: str, ids: list[str]) -> Path:
    """Each request submits the next of `ids` (DRAFT events of the user): one wrk run must not
    send more requests than there are ids, or the rest are 409s (counted as errors)."""
    script = folder / f"{uuid.uuid4().hex}.lua"
    script.write_text(SUBMIT_LUA.format(ids=",".join(f'"{i}"' for i in ids), token=token))
    return script


def until_relayed(database: Path) -> None:
    """Until the outbox has nothing unpublished (at most 30 s)."""
    for _ in range(300):
        with sqlite3.connect(database) as db:
            (waiting,) = db.execute(
                "SELECT count(*) FROM events_outbox WHERE published_at IS NULL"
            ).fetchone()
        if not waiting:
            return
        time.sleep(0.1)


def audit_lag(database: Path) -> list[float]:
    """Seconds from each audited submit's change to its audit entry (recorded_at - at)."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT at, recorded_at FROM audit_entries WHERE action = 'event.submitted'"
        ).fetchall()
    parse = datetime.fromisoformat
    return [(parse(b) - parse(a)).total_seconds() for a, b in rows]


def scenario_bus(report: Report) -> None:
    runs = max(5, report.args.runs)
    result = asyncio.run(bus_micro.measure(20000, runs))
    quiet = asyncio.run(bus_micro.measure(20000, runs, "WARNING"))
    report.section(
        "\n".join(
            [
                "### bus: one command through both sides, in process (no DB, no key)",
                "",
                f"CPU time per command (process time), median of {runs} interleaved runs of "
                "20,000 commands, on the event loop the server runs, after its GC tuning.",
                "",
                "| | us per command |",
                "|---|---:|",
                f"| direct await of the handler | {result['direct_us']:.2f} |",
                f"| bus, logs at INFO (text; its per-command lines are DEBUG) "
                f"| {result['bus_us']:.1f} |",
                f"| bus, logs at WARNING | {quiet['bus_us']:.1f} |",
            ]
        )
    )
    report.target(
        "bus <= 20 us per command over a direct await (INFO logging configured)",
        f"{result['overhead_us']:.1f} us",
        result["overhead_us"] <= 20,
    )


def scenario_ping(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "ping")
    nest = Sample("NestJS gateway -> TCP -> service, `/ping` (both processes)")
    bus = Sample("EventBoard gateway + bus, `/bench/ping`")
    direct = Sample("EventBoard gateway, handler awaited directly (no bus)")
    quiet = Sample("EventBoard gateway + bus, logs at WARNING (no request line)")
    script = wrk_script(folder, "GET", {}, None, keyed=False)
    with (
        nest_peer() as peer,
        server("bench.apps.ping:bus_app", app_env(database)) as ours,
        server("bench.apps.ping:direct_app", app_env(database)) as plain,
        server("bench.apps.ping:bus_app", app_env(database, LOG_LEVEL="WARNING")) as silent,
        report.baseline_server("bench.apps.ping:bus_app", app_env(database)) as before,
    ):
        targets = [
            (nest, peer.url + "/ping", script, peer.pids),
            (bus, ours.url + "/bench/ping", script, ours.pids),
            (direct, plain.url + "/bench/ping", script, plain.pids),
            (quiet, silent.url + "/bench/ping", script, silent.pids),
        ]
        then = _baseline_sample(report, before, "/bench/ping", script, targets)
        interleaved(targets, runs=report.args.runs, connections=64, seconds=report.args.seconds)
        report.table(
            "ping: one round trip through the gateway, 64 connections",
            [nest, bus, direct, quiet, *([then] if then else [])],
        )
        if report.args.profile:
            report.profiles(
                "ping",
                [
                    ("gateway + bus", *_profiled(ours, ours.url + "/bench/ping", script, report)),
                    ("no bus", *_profiled(plain, plain.url + "/bench/ping", script, report)),
                ],
            )
    cpu = (bus.cpu_us or 0) / (nest.cpu_us or 1)
    report.target("ping CPU per request <= 0.75x the NestJS peer's", f"{cpu:.2f}x", cpu <= 0.75)
    report.against_baseline("ping", bus, then)
    rps = bus.rps / nest.rps
    report.target("ping req/s >= 1.0x the NestJS peer's", f"{rps:.2f}x", rps >= 1.0)


def _baseline_sample(
    report: Report,
    before: Server | None,
    path: str,
    script: Path,
    targets: list[tuple[Sample, str, Path, list[int]]],
) -> Sample | None:
    """The baseline's sample, added to the interleaved targets (None without `--baseline`)."""
    if before is None:
        return None
    sample = Sample(f"EventBoard at {report.args.baseline}")
    targets.append((sample, before.url + path, script, before.pids))
    return sample


def _profiled(
    target: Server, url: str, script: Path, report: Report, connections: int = 64
) -> tuple[float, dict[str, float]]:
    return profile(target, url, script, connections=connections, seconds=report.args.seconds)


def scenario_get(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "get")
    project, reference = Sample("EventBoard (JWT, gateway, bus, DB)"), Sample("raw aiosqlite")
    quiet = Sample("EventBoard, logs at WARNING (no request line)")
    with (
        server("app.main:app", app_env(database)) as app,
        server("app.main:app", app_env(database, LOG_LEVEL="WARNING")) as silent,
        raw_reference(database) as raw,
        report.baseline_server("app.main:app", app_env(database)) as before,
    ):
        authed = wrk_script(
            folder, "GET", {"Authorization": f"Bearer {login(app.url)}"}, None, False
        )
        plain = wrk_script(folder, "GET", {}, None, keyed=False)
        targets = [
            (project, f"{app.url}/events/{EVENT}", authed, app.pids),
            (reference, f"{raw.url}/events/{EVENT}", plain, raw.pids),
            (quiet, f"{silent.url}/events/{EVENT}", authed, silent.pids),
        ]
        then = _baseline_sample(report, before, f"/events/{EVENT}", authed, targets)
        interleaved(targets, runs=report.args.runs, connections=64, seconds=report.args.seconds)
        report.table(
            "get: GET /events/{id}, 64 connections",
            [project, reference, quiet, *([then] if then else [])],
        )
        if report.args.profile:
            report.profiles(
                "get",
                [
                    ("EventBoard", *_profiled(app, f"{app.url}/events/{EVENT}", authed, report)),
                    ("raw", *_profiled(raw, f"{raw.url}/events/{EVENT}", plain, report)),
                ],
            )
    ratio = project.rps / reference.rps
    report.target("GET >= 0.60x raw aiosqlite", f"{ratio:.2f}x", ratio >= 0.60)
    p99 = project.p99 / reference.p99
    report.target("GET p99 <= 2x the reference's", f"{p99:.2f}x", p99 <= 2)
    report.against_baseline("GET", project, then)


def scenario_post(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "post")
    unkeyed, keyed = Sample("EventBoard, no key"), Sample("EventBoard, Idempotency-Key")
    reference = Sample("raw aiosqlite insert + commit")
    json_header = {"Content-Type": "application/json"}
    with (
        server("app.main:app", app_env(database)) as app,
        raw_reference(database) as raw,
        report.baseline_server("app.main:app", app_env(database)) as before,
    ):
        headers = {**json_header, "Authorization": f"Bearer {login(app.url)}"}
        plain = wrk_script(folder, "POST", headers, BODY, keyed=False)
        with_key = wrk_script(folder, "POST", headers, BODY, keyed=True)
        raw_script = wrk_script(folder, "POST", json_header, BODY, keyed=False)
        targets = [
            (unkeyed, f"{app.url}/events", plain, app.pids),
            (keyed, f"{app.url}/events", with_key, app.pids),
            (reference, f"{raw.url}/events", raw_script, raw.pids),
        ]
        then = _baseline_sample(report, before, "/events", plain, targets)
        interleaved(targets, runs=report.args.runs, connections=16, seconds=report.args.seconds)
        report.table(
            "post: POST /events, 16 connections",
            [unkeyed, keyed, reference, *([then] if then else [])],
        )
        if report.args.profile:
            report.profiles(
                "post",
                [
                    ("EventBoard", *_profiled(app, f"{app.url}/events", plain, report, 16)),
                    ("raw", *_profiled(raw, f"{raw.url}/events", raw_script, report, 16)),
                ],
            )
    ratio = unkeyed.rps / reference.rps
    report.target("POST >= 0.55x the raw insert", f"{ratio:.2f}x", ratio >= 0.55)
    cost = unkeyed.rps / keyed.rps
    report.target("keyed create <= 1.2x an unkeyed one", f"{cost:.2f}x", cost <= 1.2)
    report.against_baseline("POST", unkeyed, then)


def scenario_search(report: Report, folder: Path) -> None:
    database = migrated_database(folder, "search")
    add_events(database, 100_000)
    project, reference = Sample("EventBoard, search=needle"), Sample("raw aiosqlite, LIKE scan")
    broad = Sample("EventBoard, search=Generated (every event matches)")
    query = "/events?limit=20&search=needle"
    with (
        server("app.main:app", app_env(database)) as app,
        raw_reference(database) as raw,
    ):
        authed = wrk_script(
            folder, "GET", {"Authorization": f"Bearer {login(app.url)}"}, None, False
        )
        plain = wrk_script(folder, "GET", {}, None, keyed=False)
        interleaved(
            [
                (project, app.url + query, authed, app.pids),
                (reference, raw.url + query, plain, raw.pids),
                (broad, app.url + "/events?limit=20&search=Generated", authed, app.pids),
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
    with server("app.main:app", app_env(database)) as app:
        get_script = wrk_script(
            folder, "GET", {"Authorization": f"Bearer {login(app.url)}"}, None, False
        )
        login_body = json.dumps({"email": USER_EMAIL, "password": PASSWORD})
        login_script = wrk_script(
            folder, "POST", {"Content-Type": "application/json"}, login_body, keyed=False
        )
        seconds = report.args.seconds
        url = f"{app.url}/events/{EVENT}"
        for _ in range(report.args.runs):
            alone.loads.append(wrk(url, get_script, connections=8, seconds=seconds))
            background = subprocess.Popen(
                _wrk_command(f"{app.url}/auth/login", login_script, 16, seconds + 2),
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)  # let the burst build up before measuring under it
            burst.loads.append(wrk(url, get_script, connections=8, seconds=seconds))
            output, _ = background.communicate(timeout=seconds + 60)
            logins.loads.append(parse_wrk(output))
    report.table(
        "burst: GET /events/{id} at 8 connections, alone and during a login burst",
        [alone, burst, logins],
        "The logins' errors are their 503 OVERLOADED answers: bcrypt's admission control "
        "refuses a check that would wait more than BCRYPT_MAX_WAIT (2 s).",
    )
    ratio = burst.p99 / alone.p99
    report.target("GET p99 during the burst <= 2x without", f"{ratio:.2f}x", ratio <= 2)


def scenario_submit(report: Report, folder: Path) -> None:
    """The emitted notification's cost: submit in this tree (the history entry, the outbox row,
    the relay and the audit module's entry, all in this process) against the same command at
    the commit before notifications."""
    database = migrated_database(folder, "submit")
    runs, seconds = report.args.runs, report.args.seconds
    per_run = 4000 * seconds  # more than one run can submit (wrk -c16 here: ~1,500/s)
    needed = per_run * (runs + 2)  # a warm-up, the runs, and one for --profile
    add_events(database, needed)
    baseline = report.baseline or extract(NOTIFICATIONS_BASELINE, folder / "before-notifications")
    name = report.args.baseline or NOTIFICATIONS_BASELINE
    project, before = (
        Sample("EventBoard (history + notification + audit)"),
        Sample(f"EventBoard at {name} (no notifications)"),
    )
    then_db = folder / "submit-baseline.db"
    with (
        server("app.main:app", app_env(database)) as app,
        server("app.main:app", app_env(then_db), tree=baseline) as old,
    ):
        add_events(then_db, needed)
        targets = [
            (project, app, draft_ids(database), login(app.url)),
            (before, old, draft_ids(then_db), login(old.url)),
        ]
        for run in range(runs + 1):  # the first is the warm-up
            shift = run % len(targets)
            for sample, target, ids, token in targets[shift:] + targets[:shift]:
                chunk = ids[run * per_run : (run + 1) * per_run]
                script = submit_script(folder, token, chunk)
                load = wrk(
                    f"{target.url}/events/{chunk[0]}/submit",
                    script,
                    connections=16,
                    seconds=seconds if run else 2,
                    pids=target.pids,
                )
                if run:
                    sample.loads.append(load)
        until_relayed(database)
        lags = sorted(audit_lag(database))  # of the measured runs only, not of a profiled one
        if report.args.profile:
            chunk = targets[0][2][(runs + 1) * per_run :]
            script = submit_script(folder, targets[0][3], chunk)
            url = f"{app.url}/events/{chunk[0]}/submit"
            then_ids = targets[1][2][(runs + 1) * per_run :]
            then_script = submit_script(folder, targets[1][3], then_ids)
            report.profiles(
                "submit",
                [
                    ("EventBoard", *_profiled(app, url, script, report, 16)),
                    (
                        f"at {name}",
                        *_profiled(
                            old, f"{old.url}/events/{then_ids[0]}/submit", then_script, report, 16
                        ),
                    ),
                ],
            )
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("inf")
    report.table(
        "submit: POST /events/{id}/submit, 16 connections",
        [project, before],
        f"Audit lag under this load (an entry's recorded_at - at, {len(lags):,} entries): "
        f"p50 {statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {lags[-1] * 1000:.0f} ms."
        if lags
        else "No audit entry was recorded.",
    )
    ratio = (project.cpu_us or 0) / (before.cpu_us or 1)
    report.target(
        f"submit CPU per request with its notification <= 1.15x without ({name})",
        f"{ratio:.2f}x",
        ratio <= 1.15,
    )
    report.target("audit lag p99 under load < 1 s", f"{p99 * 1000:.0f} ms", p99 < 1.0)


HTTP_SCENARIOS = {
    "ping": scenario_ping,
    "get": scenario_get,
    "post": scenario_post,
    "search": scenario_search,
    "burst": scenario_burst,
    "submit": scenario_submit,
}


def extract(ref: str, into: Path) -> Path:
    """The source tree at a git commit, as `git archive` gives it."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


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
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node.js {node or '-'}, "
        f"{wrk_version.strip() or 'wrk'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="EventBoard's performance suite")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per scenario")
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    parser.add_argument("--profile", action="store_true", help="where the CPU time goes")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--baseline", help="a git commit to run beside this tree (ping, get, post)")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name] or ["bus", *HTTP_SCENARIOS]
    if any(name != "bus" for name in chosen) and shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if "ping" in chosen and shutil.which("npm") is None:
        print("bench: the NestJS peer needs Node.js and npm", file=sys.stderr)
        return 2
    report = Report(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eventboard-bench-") as folder:
        if args.baseline:
            report.baseline = extract(args.baseline, Path(folder) / "baseline")
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
        + (["--profile"] if args.profile else [])
        + ([f"--baseline {args.baseline}"] if args.baseline else [])
    )
    verdicts = ["| target | measured | |", "|---|---|---|"] + [
        f"| {what} | {measured} | {'met' if held else '**missed**'} |"
        for what, measured, held in report.verdicts
    ]
    body = "\n\n".join(
        [
            f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}; `{command}` "
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
