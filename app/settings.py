"""Settings: one frozen Struct, read once from the environment (and an optional `.env`)."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
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


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app_env: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///./data/eventboard.db"
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    jwt_expires_in: int = 3600
    bcrypt_rounds: int = 12
    bcrypt_threads: int = 0
    """Threads of bcrypt's own pool; 0 means one fewer than the cores (at least one)."""
    bcrypt_max_wait: float = 2.0
    """A password check that would wait longer than this for bcrypt is refused at once (503)."""
    seed_demo_data: bool = True
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    bus_transport: BusTransport = "local"
    nats_url: str = "nats://127.0.0.1:4222"
    bus_local_modules: tuple[str, ...] = ("auth", "events")
    """With BUS_TRANSPORT=nats: the modules that still run in this process."""
    max_body_bytes: int = 64 * 1024
    cors_allow_origins: tuple[str, ...] = ("*",)
    # Per-route bus policy: total time the gateway waits, and attempts (the seeds' values).
    timeout_auth: float = 5.0
    timeout_list: float = 10.0
    timeout_read: float = 5.0
    timeout_write: float = 10.0
    attempts_auth: int = 2
    attempts_me: int = 3
    attempts_read: int = 3
    attempts_write: int = 1
    per_try_timeout: float | None = None
    """The longest one attempt may wait (none: an attempt may use all the time left)."""
    # Retries: exponential backoff with full jitter, and a per-module budget.
    retry_base_delay: float = 1.0
    retry_multiplier: float = 2.0
    retry_max_delay: float = 30.0
    retry_budget_ratio: float = 0.2
    retry_budget_min_per_second: float = 3.0
    bus_faults: tuple[Fault, ...] = ()
    # Idempotency keys: kept this long, purged in the background this often.
    idempotency_ttl: int = 24 * 3600
    idempotency_purge_interval: int = 600
    # Circuit breaker per target module (count-based sliding window).
    breaker_window: int = 20
    breaker_min_calls: int = 10
    breaker_failure_rate: float = 0.5
    breaker_slow_call: float = 5.0
    breaker_open_seconds: float = 10.0
    breaker_half_open_probes: int = 3
    # Rate limits (0 disables); Redis shares them across workers and hosts.
    rate_limit_per_minute: int = 1200
    login_failures_per_15min: int = 10
    login_concurrency_per_client: int = 2
    """Password checks (login, signup) one client may have in flight in this process."""
    redis_url: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    """Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses, CIDRs or `*`)."""
    # Operations.
    slow_command_ms: int = 500
    """A command slower than this gets a WARNING line of its own."""
    shutdown_grace_seconds: float = 10.0
    otel_traces_exporter: Literal["none", "otlp", "console"] = "none"
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
        for name, (field, parse) in _PARSERS.items():
            raw = values.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                kwargs[field] = parse(raw.strip())
            except ValueError as exc:
                shown = "" if name == "JWT_SECRET" else f" (got {raw.strip()!r})"
                raise SettingsError(f"{name}: {exc}{shown}") from None

        app_env = kwargs.get("app_env", "development")
        if "jwt_secret" not in kwargs and app_env != "development":
            raise SettingsError(
                f"JWT_SECRET: required when APP_ENV={app_env}; "
                f"set it to a random value of at least {MIN_JWT_SECRET_BYTES} bytes"
            )
        kwargs.setdefault("seed_demo_data", app_env != "production")
        kwargs["misspelled"] = _misspelled(values)
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


def _misspelled(values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Names that are close to one of ours but not it (`RATE_LIMIT_PER_MIN`)."""
    found = []
    for name in sorted(values):
        if name in _PARSERS or not name.isupper():
            continue
        close = difflib.get_close_matches(name, _PARSERS, n=1, cutoff=0.85)
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


def _log_level(raw: str) -> str:
    return _choice("trace", "debug", "info", "success", "warning", "error", "critical")(raw).upper()


def _nats_url(raw: str) -> str:
    if not raw.startswith(("nats://", "tls://")):
        raise ValueError("must start with nats:// or tls:// (comma-separate several servers)")
    return raw


def _modules(raw: str) -> tuple[str, ...]:
    if raw.lower() == "none":
        return ()
    modules = tuple(m.strip() for m in raw.split(",") if m.strip())
    unknown = set(modules) - {"auth", "events"}
    if unknown:
        raise ValueError(f"unknown module(s) {', '.join(sorted(unknown))}; known: auth, events")
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


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://")):
        raise ValueError("must start with redis:// or rediss://")
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not origins:
        raise ValueError("must be a comma-separated list of origins, or *")
    return origins


_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "APP_ENV": ("app_env", _choice("development", "test", "production")),
    "DATABASE_URL": ("database_url", _database_url),
    "JWT_SECRET": ("jwt_secret", _jwt_secret),
    "JWT_EXPIRES_IN": ("jwt_expires_in", _whole_seconds),
    "BCRYPT_ROUNDS": ("bcrypt_rounds", _int_between(4, 31)),
    "BCRYPT_THREADS": ("bcrypt_threads", _int_between(0, 64)),
    "BCRYPT_MAX_WAIT": ("bcrypt_max_wait", parse_duration),
    "SEED_DEMO_DATA": ("seed_demo_data", _bool),
    "LOG_LEVEL": ("log_level", _log_level),
    "LOG_FORMAT": ("log_format", _choice("text", "json")),
    "BUS_TRANSPORT": ("bus_transport", _choice("local", "local-wire", "nats")),
    "NATS_URL": ("nats_url", _nats_url),
    "BUS_LOCAL_MODULES": ("bus_local_modules", _modules),
    "MAX_BODY_BYTES": ("max_body_bytes", _int_between(1024, 16 * 1024 * 1024)),
    "CORS_ALLOW_ORIGINS": ("cors_allow_origins", _origins),
    "TIMEOUT_AUTH": ("timeout_auth", parse_duration),
    "TIMEOUT_LIST": ("timeout_list", parse_duration),
    "TIMEOUT_READ": ("timeout_read", parse_duration),
    "TIMEOUT_WRITE": ("timeout_write", parse_duration),
    "ATTEMPTS_AUTH": ("attempts_auth", _int_between(1, 10)),
    "ATTEMPTS_ME": ("attempts_me", _int_between(1, 10)),
    "ATTEMPTS_READ": ("attempts_read", _int_between(1, 10)),
    "ATTEMPTS_WRITE": ("attempts_write", _int_between(1, 10)),
    "PER_TRY_TIMEOUT": ("per_try_timeout", parse_duration),
    "RETRY_BASE_DELAY": ("retry_base_delay", _non_negative_seconds),
    "RETRY_MULTIPLIER": ("retry_multiplier", _float_between(1.0, 10.0)),
    "RETRY_MAX_DELAY": ("retry_max_delay", parse_duration),
    "RETRY_BUDGET_RATIO": ("retry_budget_ratio", _float_between(0.0, 1.0)),
    "RETRY_BUDGET_MIN_PER_SECOND": ("retry_budget_min_per_second", _float_between(0.0, 1000.0)),
    "BUS_FAULTS": ("bus_faults", _faults),
    "IDEMPOTENCY_TTL": ("idempotency_ttl", _whole_seconds),
    "IDEMPOTENCY_PURGE_INTERVAL": ("idempotency_purge_interval", _whole_seconds),
    "BREAKER_WINDOW": ("breaker_window", _int_between(1, 10_000)),
    "BREAKER_MIN_CALLS": ("breaker_min_calls", _int_between(1, 10_000)),
    "BREAKER_FAILURE_RATE": ("breaker_failure_rate", _float_between(0.01, 1.0)),
    "BREAKER_SLOW_CALL": ("breaker_slow_call", parse_duration),
    "BREAKER_OPEN_SECONDS": ("breaker_open_seconds", parse_duration),
    "BREAKER_HALF_OPEN_PROBES": ("breaker_half_open_probes", _int_between(1, 1000)),
    "RATE_LIMIT_PER_MINUTE": ("rate_limit_per_minute", _int_between(0, 10_000_000)),
    "LOGIN_FAILURES_PER_15MIN": ("login_failures_per_15min", _int_between(0, 1_000_000)),
    "LOGIN_CONCURRENCY_PER_CLIENT": ("login_concurrency_per_client", _int_between(0, 1000)),
    "REDIS_URL": ("redis_url", _redis_url),
    "TRUSTED_PROXIES": ("trusted_proxies", _trusted_proxies),
    "SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", parse_duration),
    "SLOW_COMMAND_MS": ("slow_command_ms", _int_between(1, 600_000)),
    "OTEL_TRACES_EXPORTER": ("otel_traces_exporter", _choice("none", "otlp", "console")),
}
