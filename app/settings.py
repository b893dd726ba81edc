"""Settings: one frozen Struct, read once from the environment (and an optional `.env`).

Each setting is declared once, as a field: its type, its default, and (`Env`) how its
environment variable, the field's name in upper case, is read."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from dotenv import dotenv_values

N = TypeVar("N", int, float)
Environment = Literal["development", "test", "production"]
LogFormat = Literal["text", "json"]
BusTransport = Literal["local", "local-wire", "nats"]

# Only ever used when APP_ENV=development and JWT_SECRET is unset.
DEVELOPMENT_JWT_SECRET = "eventboard-development-only-secret-never-use-in-production"
MIN_JWT_SECRET_BYTES = 32


_SECRETS = frozenset({"JWT_SECRET", "JWT_PREVIOUS_SECRETS"})
"""Settings whose values an error message never shows."""


MODULES = ("auth", "events", "audit")
"""Every module, in the order they are registered."""


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A fault injected on the handle side of one pattern (`BUS_FAULTS`, never in production).

    `delay_ms` waits before the handler runs (or after it, before commit, with `after_handler`),
    on a random `delay_rate` share of deliveries (all by default);
    `error` is raised on the first `fail_times` deliveries, or on a random `error_rate` share.
    """

    cmd: str
    delay_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] = 0
    delay_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    after_handler: bool = False
    error: Literal["unavailable", "locked", "internal"] | None = None
    fail_times: Annotated[int, msgspec.Meta(ge=0)] = 0
    error_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0


@dataclass(frozen=True)
class Env:
    """Marks a field as a setting read from the environment variable of its name in upper case,
    with `parse` (raising ValueError with a message for the operator); a Literal field without
    one takes one of its values, case-insensitively."""

    parse: Callable[[str], Any] | None = None


def _misspelled(values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Names that are close to one of ours but not it (`RATE_LIMIT_PER_MIN`)."""
    found = []
    for name in sorted(values):
        if name in VARIABLES or not name.isupper():
            continue
        close = difflib.get_close_matches(name, VARIABLES, n=1, cutoff=0.85)
        if close:
            found.append((name, close[0]))
    return tuple(found)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _between(kind: Callable[[str], N], noun: str, low: N, high: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"must be {noun} between {low} and {high}")
        return value

    return parse


def _int_between(low: int, high: int) -> Callable[[str], int]:
    return _between(int, "an integer", low, high)


def _float_between(low: float, high: float) -> Callable[[str], float]:
    return _between(float, "a number", low, high)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be a boolean (true/false, 1/0, yes/no, on/off)")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_EXAMPLES = "5, 2.5s, 500ms, 15m, 1h or 7d"


def parse_duration(raw: str) -> float:
    """Every duration setting reads the same: a number with an optional unit (`ms`, `s`, `m`,
    `h`, `d`; none means seconds) -> seconds, positive."""
    match = _DURATION.match(raw.lower())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"must be a positive duration such as {_DURATION_EXAMPLES}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _non_negative_seconds(raw: str) -> float:
    """A duration that may also be zero (`0`, `0s`, `0ms`)."""
    match = _DURATION.match(raw.lower())
    return 0.0 if match is not None and float(match.group(1)) == 0 else parse_duration(raw)


def _whole_seconds(raw: str) -> int:
    """A duration kept in whole seconds (token lifetimes, retention): `3600`, `15m`, `1.5h`."""
    seconds = parse_duration(raw)
    if seconds < 1 or seconds != int(seconds):
        raise ValueError("must be a whole number of seconds, such as 3600, 90s, 15m or 1h")
    return int(seconds)


def _faults(raw: str) -> tuple[Fault, ...]:
    try:
        return msgspec.json.decode(raw, type=tuple[Fault, ...])
    except msgspec.DecodeError as exc:
        raise ValueError(
            f'must be a JSON list such as [{{"cmd": "events.findAll", "delay_ms": 12000}}]: {exc}'
        ) from None


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return raw


def _jwt_secret(raw: str) -> str:
    if len(raw.encode()) < MIN_JWT_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_JWT_SECRET_BYTES} bytes")
    return raw


def _jwt_secrets(raw: str) -> tuple[str, ...]:
    secrets = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(len(secret.encode()) < MIN_JWT_SECRET_BYTES for secret in secrets):
        raise ValueError(
            f"each comma-separated secret must be at least {MIN_JWT_SECRET_BYTES} bytes"
        )
    return secrets


def _log_level(raw: str) -> str:
    return _choice("trace", "debug", "info", "success", "warning", "error", "critical")(raw).upper()


def _nats_url(raw: str) -> str:
    if not raw.startswith(("nats://", "tls://")):
        raise ValueError("must start with nats:// or tls:// (comma-separate several servers)")
    return raw


def _readable_file(raw: str) -> str:
    if not os.access(raw, os.R_OK) or not Path(raw).is_file():
        raise ValueError("must be the path of a file this process can read")
    return raw


_SUBJECT_TOKENS = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def _subject_prefix(raw: str) -> str:
    if len(raw) > 64 or not _SUBJECT_TOKENS.match(raw):
        raise ValueError(
            "must be up to 64 characters of letters, digits, - and _, in dot-separated tokens "
            "(no spaces or wildcards), such as eventboard or acme.staging"
        )
    return raw


def _modules(raw: str) -> tuple[str, ...]:
    if raw.lower() == "none":
        return ()
    modules = tuple(m.strip() for m in raw.split(",") if m.strip())
    unknown = set(modules) - set(MODULES)
    if unknown:
        raise ValueError(
            f"unknown module(s) {', '.join(sorted(unknown))}; known: {', '.join(MODULES)}"
        )
    return modules


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    """`10.0.0.5, 10.1.0.0/16, ::1` -> normalised networks; `*` trusts every peer."""
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    if entries == ("*",):
        return entries
    networks = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network; give addresses or CIDRs "
                "(10.0.0.5, 10.1.0.0/16), comma-separated, or *"
            ) from None
    return tuple(networks)


def _host(raw: str) -> str:
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        raise ValueError(
            "must be an IP address to listen on, such as 127.0.0.1 or 0.0.0.0"
        ) from None
    return raw


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://")):
        raise ValueError("must start with redis:// or rediss://")
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not origins:
        raise ValueError("must be a comma-separated list of origins, or *")
    return origins


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app_env: Annotated[Environment, Env()] = "development"
    database_url: Annotated[str, Env(_database_url)] = "sqlite+aiosqlite:///./data/eventboard.db"
    jwt_secret: Annotated[str, Env(_jwt_secret)] = DEVELOPMENT_JWT_SECRET
    jwt_previous_secrets: Annotated[tuple[str, ...], Env(_jwt_secrets)] = ()
    """Secrets that signed tokens still in use: they verify, `jwt_secret` alone signs."""
    jwt_expires_in: Annotated[int, Env(_whole_seconds)] = 3600
    bcrypt_rounds: Annotated[int, Env(_int_between(4, 31))] = 12
    bcrypt_threads: Annotated[int, Env(_int_between(0, 64))] = 0
    """Threads of bcrypt's own pool; 0 means one fewer than the cores (at least one)."""
    bcrypt_max_wait: Annotated[float, Env(parse_duration)] = 2.0
    """A password check that would wait longer than this for bcrypt is refused at once (503)."""
    seed_demo_data: Annotated[bool, Env(_bool)] = True
    log_level: Annotated[str, Env(_log_level)] = "INFO"
    log_format: Annotated[LogFormat, Env()] = "text"
    bus_transport: Annotated[BusTransport, Env()] = "local"
    nats_url: Annotated[str, Env(_nats_url)] = "nats://127.0.0.1:4222"
    nats_tls_ca: Annotated[str | None, Env(_readable_file)] = None
    """The CA that signed the NATS servers' certificates: connect over TLS, verifying them."""
    nats_tls_cert: Annotated[str | None, Env(_readable_file)] = None
    nats_tls_key: Annotated[str | None, Env(_readable_file)] = None
    """This process's certificate and key, for NATS servers that verify clients."""
    nats_subject_prefix: Annotated[str, Env(_subject_prefix)] = "eventboard"
    """Prefixes every NATS subject and queue group: deployments sharing a server stay apart."""
    bus_local_modules: Annotated[tuple[str, ...], Env(_modules)] = MODULES
    """With BUS_TRANSPORT=nats: the modules that still run in this process."""
    max_body_bytes: Annotated[int, Env(_int_between(1024, 16 * 1024 * 1024))] = 64 * 1024
    cors_allow_origins: Annotated[tuple[str, ...], Env(_origins)] = ("*",)
    # Per-route bus policy: total time the gateway waits, and attempts (the seeds' values).
    timeout_auth: Annotated[float, Env(parse_duration)] = 5.0
    timeout_list: Annotated[float, Env(parse_duration)] = 10.0
    timeout_read: Annotated[float, Env(parse_duration)] = 5.0
    timeout_write: Annotated[float, Env(parse_duration)] = 10.0
    attempts_auth: Annotated[int, Env(_int_between(1, 10))] = 2
    attempts_me: Annotated[int, Env(_int_between(1, 10))] = 3
    attempts_read: Annotated[int, Env(_int_between(1, 10))] = 3
    attempts_write: Annotated[int, Env(_int_between(1, 10))] = 1
    per_try_timeout: Annotated[float | None, Env(parse_duration)] = None
    """The longest one attempt may wait (none: an attempt may use all the time left)."""
    # Retries: exponential backoff with full jitter, and a per-module budget.
    retry_base_delay: Annotated[float, Env(_non_negative_seconds)] = 1.0
    retry_multiplier: Annotated[float, Env(_float_between(1.0, 10.0))] = 2.0
    retry_max_delay: Annotated[float, Env(parse_duration)] = 30.0
    retry_budget_ratio: Annotated[float, Env(_float_between(0.0, 1.0))] = 0.2
    retry_budget_min_per_second: Annotated[float, Env(_float_between(0.0, 1000.0))] = 3.0
    bus_faults: Annotated[tuple[Fault, ...], Env(_faults)] = ()
    # Idempotency keys: kept this long, purged in the background this often.
    idempotency_ttl: Annotated[int, Env(_whole_seconds)] = 24 * 3600
    idempotency_purge_interval: Annotated[int, Env(_whole_seconds)] = 600
    # Notifications: the relay's poll, delivery attempts before the dead letters, retention.
    notification_poll_seconds: Annotated[float, Env(parse_duration)] = 1.0
    """Besides being woken by each commit that emitted, a relay looks this often."""
    notification_attempts: Annotated[int, Env(_int_between(1, 100))] = 5
    """Deliveries of a notification to a subscriber before it is parked as a dead letter."""
    notification_backoff: Annotated[float, Env(parse_duration)] = 0.5
    """The delay before the second delivery, doubling for each after it (at most 60 s)."""
    notification_retention: Annotated[int, Env(_whole_seconds)] = 7 * 24 * 3600
    """Published outbox rows, inbox records and the JetStream stream keep this long."""
    # Circuit breaker per command pattern (count-based sliding window).
    breaker_window: Annotated[int, Env(_int_between(1, 10_000))] = 20
    breaker_min_calls: Annotated[int, Env(_int_between(1, 10_000))] = 10
    breaker_failure_rate: Annotated[float, Env(_float_between(0.01, 1.0))] = 0.5
    breaker_slow_call: Annotated[float, Env(parse_duration)] = 5.0
    breaker_open_seconds: Annotated[float, Env(parse_duration)] = 10.0
    breaker_half_open_probes: Annotated[int, Env(_int_between(1, 1000))] = 3
    # Rate limits (0 disables); Redis shares them across workers and hosts.
    rate_limit_per_minute: Annotated[int, Env(_int_between(0, 10_000_000))] = 1200
    login_failures_per_15min: Annotated[int, Env(_int_between(0, 1_000_000))] = 10
    login_concurrency_per_client: Annotated[int, Env(_int_between(0, 1000))] = 2
    """Password checks (login, signup) one client may have in flight in this process."""
    redis_url: Annotated[str | None, Env(_redis_url)] = None
    trusted_proxies: Annotated[tuple[str, ...], Env(_trusted_proxies)] = ()
    """Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses, CIDRs or `*`)."""
    # Operations.
    slow_command_ms: Annotated[int, Env(_int_between(1, 600_000))] = 500
    """A command slower than this gets a WARNING line of its own."""
    shutdown_grace_seconds: Annotated[float, Env(parse_duration)] = 10.0
    shutdown_delay_seconds: Annotated[float, Env(_non_negative_seconds)] = 0.0
    """After SIGTERM, keep answering (503 to new work) at least this long."""
    metrics_port: Annotated[int | None, Env(_int_between(1, 65535))] = None
    """A worker's own port for /metrics, /health/live and /health/ready (none: not served)."""
    metrics_host: Annotated[str, Env(_host)] = "127.0.0.1"
    """Where a worker's METRICS_PORT listens (0.0.0.0 to let a scraper on another host in)."""
    otel_traces_exporter: Annotated[Literal["none", "otlp", "console"], Env()] = "none"
    misspelled: tuple[tuple[str, str], ...] = ()
    """Variables given that are not settings but look like one (given, meant): warned at start."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read settings; the process environment wins over `.env`. Raises SettingsError."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        kwargs: dict[str, Any] = {}
        for name, (field, parse) in VARIABLES.items():
            raw = values.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                kwargs[field] = parse(raw.strip())
            except ValueError as exc:
                shown = "" if name in _SECRETS else f" (got {raw.strip()!r})"
                raise SettingsError(f"{name}: {exc}{shown}") from None

        app_env = kwargs.get("app_env", "development")
        if "jwt_secret" not in kwargs and app_env != "development":
            raise SettingsError(
                f"JWT_SECRET: required when APP_ENV={app_env}; "
                f"set it to a random value of at least {MIN_JWT_SECRET_BYTES} bytes"
            )
        kwargs.setdefault("seed_demo_data", app_env != "production")
        kwargs["misspelled"] = _misspelled(values)
        if ("nats_tls_cert" in kwargs) != ("nats_tls_key" in kwargs):
            raise SettingsError("NATS_TLS_CERT and NATS_TLS_KEY: set both, or neither")
        if kwargs.get("bus_faults") and app_env == "production":
            raise SettingsError("BUS_FAULTS: fault injection is refused when APP_ENV=production")
        return cls(**kwargs)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    def startup_warnings(self) -> list[str]:
        """What an operator must hear about once, at start."""
        warnings = []
        if self.jwt_secret == DEVELOPMENT_JWT_SECRET:
            warnings.append(
                "JWT_SECRET is not set: tokens are signed with the published development key, "
                "so anyone who can reach this server can forge an ADMIN token; set JWT_SECRET "
                "before exposing it beyond this machine"
            )
        warnings += [
            f"{given} is not a setting (ignored); did you mean {meant}?"
            for given, meant in self.misspelled
        ]
        return warnings


def _variables() -> dict[str, tuple[str, Callable[[str], Any]]]:
    """Environment variable -> (field, parser), from the fields' own declarations."""
    found = {}
    for field, hint in typing.get_type_hints(Settings, include_extras=True).items():
        env = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Env)), None)
        if env is None:
            continue
        parse = env.parse or _choice(*typing.get_args(typing.get_args(hint)[0]))
        found[field.upper()] = (field, parse)
    return found


VARIABLES = _variables()
"""Every setting's environment variable -> (field, parser)."""
