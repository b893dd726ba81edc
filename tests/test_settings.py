"""Settings from the environment: defaults, validation that names the setting, production rules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import DEVELOPMENT_JWT_SECRET, VARIABLES, Settings, SettingsError

SECRET = "s" * 32


def test_development_defaults(tmp_path: Path):
    settings = Settings.from_env({}, env_file=tmp_path / "none")

    assert settings.app_env == "development"
    assert settings.database_url == "sqlite+aiosqlite:///./data/eventboard.db"
    assert settings.jwt_secret == DEVELOPMENT_JWT_SECRET
    assert settings.jwt_expires_in == 3600
    assert settings.bcrypt_rounds == 12
    assert settings.seed_demo_data is True
    assert settings.max_body_bytes == 64 * 1024


def test_values_are_parsed(tmp_path: Path):
    settings = Settings.from_env(
        {
            "APP_ENV": "Production",
            "JWT_SECRET": SECRET,
            "JWT_EXPIRES_IN": "15m",
            "BCRYPT_ROUNDS": "10",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "json",
            "DATABASE_URL": "postgresql+asyncpg://db/eventboard",
        },
        env_file=None,
    )

    assert settings.app_env == "production"
    assert settings.jwt_expires_in == 900
    assert settings.bcrypt_rounds == 10
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"
    assert settings.seed_demo_data is False  # off by default in production


@pytest.mark.parametrize("env", ["production", "test"])
def test_outside_development_a_jwt_secret_is_required(env):
    with pytest.raises(SettingsError, match=r"^JWT_SECRET"):
        Settings.from_env({"APP_ENV": env}, env_file=None)


@pytest.mark.parametrize(
    ("name", "value"),
    [("JWT_SECRET", "tooshort"), ("JWT_PREVIOUS_SECRETS", f"{SECRET}-long-enough,tooshort")],
)
def test_short_jwt_secret_is_refused_without_echoing_it(name: str, value: str):
    given = {"APP_ENV": "production", "JWT_SECRET": SECRET, name: value}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(given, env_file=None)

    assert str(raised.value).startswith(name)
    assert "tooshort" not in str(raised.value)
    assert SECRET not in str(raised.value)


def test_previous_jwt_secrets_are_a_list():
    given = {"JWT_PREVIOUS_SECRETS": f" {SECRET}-a , {SECRET}-b ", "JWT_SECRET": SECRET}
    settings = Settings.from_env(given, env_file=None)

    assert settings.jwt_previous_secrets == (f"{SECRET}-a", f"{SECRET}-b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_ENV", "staging"),
        ("BCRYPT_ROUNDS", "3"),
        ("BCRYPT_ROUNDS", "twelve"),
        ("JWT_EXPIRES_IN", "soon"),
        ("JWT_EXPIRES_IN", "0"),
        ("SEED_DEMO_DATA", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
        ("DATABASE_URL", "mysql://x"),
        ("BUS_TRANSPORT", "carrier-pigeon"),
        ("NATS_SUBJECT_PREFIX", "acme.>"),
        ("NATS_SUBJECT_PREFIX", "acme staging"),
        ("NATS_SUBJECT_PREFIX", "acme..staging"),
    ],
)
def test_a_bad_value_names_its_setting(name, value):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value}, env_file=None)

    assert str(raised.value).startswith(f"{name}:")
    assert value in str(raised.value)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("BCRYPT_ROUNDS=8\nLOG_FORMAT=json\n")

    settings = Settings.from_env({"BCRYPT_ROUNDS": "9"}, env_file=env_file)

    assert settings.bcrypt_rounds == 9
    assert settings.log_format == "json"


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "JWT_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-c", "import app.main; app.main.app"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_without_secret_refuses_to_start_with_one_line(tmp_path: Path):
    result = _start(tmp_path, APP_ENV="production")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "JWT_SECRET" in lines[0]


def test_bad_setting_refuses_to_start_naming_it(tmp_path: Path):
    result = _start(tmp_path, BCRYPT_ROUNDS="lots")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eventboard: invalid configuration: BCRYPT_ROUNDS: must be an integer between 4 and 31 "
        "(got 'lots')"
    ]


def test_route_policies_and_retry_settings_are_configurable():
    settings = Settings.from_env(
        {
            "TIMEOUT_AUTH": "2s",
            "TIMEOUT_LIST": "1500ms",
            "TIMEOUT_READ": "3",
            "TIMEOUT_WRITE": "2.5s",
            "ATTEMPTS_WRITE": "2",
            "RETRY_BASE_DELAY": "250ms",
            "RETRY_MULTIPLIER": "3",
            "RETRY_BUDGET_RATIO": "0.1",
        },
        env_file=None,
    )

    assert (settings.timeout_auth, settings.timeout_list) == (2.0, 1.5)
    assert (settings.timeout_read, settings.timeout_write) == (3.0, 2.5)
    assert settings.attempts_write == 2
    assert settings.retry_base_delay == 0.25
    assert settings.retry_multiplier == 3.0
    assert settings.retry_budget_ratio == 0.1


def test_seed_policy_defaults():
    settings = Settings.from_env({}, env_file=None)

    assert (settings.timeout_auth, settings.timeout_list) == (5.0, 10.0)
    assert (settings.timeout_read, settings.timeout_write) == (5.0, 10.0)
    assert (settings.attempts_auth, settings.attempts_me) == (2, 3)
    assert (settings.attempts_read, settings.attempts_write) == (3, 1)
    assert (settings.retry_base_delay, settings.retry_multiplier) == (1.0, 2.0)


def test_bus_faults_are_parsed():
    settings = Settings.from_env(
        {
            "BUS_FAULTS": '[{"cmd": "events.findAll", "delay_ms": 12000},'
            ' {"cmd": "events.findOne", "fail_times": 2, "error": "unavailable"},'
            ' {"cmd": "events.create", "error_rate": 0.3, "error": "unavailable"}]'
        },
        env_file=None,
    )

    assert [f.cmd for f in settings.bus_faults] == [
        "events.findAll",
        "events.findOne",
        "events.create",
    ]
    assert settings.bus_faults[0].delay_ms == 12000
    assert settings.bus_faults[1].fail_times == 2
    assert settings.bus_faults[2].error_rate == 0.3


@pytest.mark.parametrize(
    "value",
    ["not json", '{"cmd": "x"}', '[{"cmd": "x", "error": "meteor"}]', '[{"cmd": "x", "oops": 1}]'],
)
def test_malformed_bus_faults_are_refused(value):
    with pytest.raises(SettingsError, match=r"^BUS_FAULTS"):
        Settings.from_env({"BUS_FAULTS": value}, env_file=None)


def test_fault_injection_is_refused_in_production():
    with pytest.raises(SettingsError, match=r"^BUS_FAULTS: fault injection is refused"):
        Settings.from_env(
            {
                "APP_ENV": "production",
                "JWT_SECRET": SECRET,
                "BUS_FAULTS": '[{"cmd": "events.findAll", "delay_ms": 10}]',
            },
            env_file=None,
        )


def test_trusted_proxies_are_normalised_networks(tmp_path: Path):
    settings = Settings.from_env(
        {"TRUSTED_PROXIES": " 10.0.0.5, 10.1.2.3/16 ,::1"}, env_file=tmp_path / "none"
    )

    assert settings.trusted_proxies == ("10.0.0.5/32", "10.1.0.0/16", "::1/128")
    assert Settings.from_env({}, env_file=tmp_path / "none").trusted_proxies == ()


def test_a_trusted_proxy_that_is_not_an_address_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match=r"^TRUSTED_PROXIES: 'proxy.internal' is not an IP"):
        Settings.from_env({"TRUSTED_PROXIES": "proxy.internal"}, env_file=tmp_path / "none")


def test_only_the_development_secret_is_warned_about(tmp_path: Path):
    development = Settings.from_env({}, env_file=tmp_path / "none")
    configured = Settings.from_env({"JWT_SECRET": SECRET}, env_file=tmp_path / "none")

    assert any("JWT_SECRET is not set" in w for w in development.startup_warnings())
    assert configured.startup_warnings() == []


@pytest.mark.parametrize(
    ("name", "value", "field", "seconds"),
    [
        ("TIMEOUT_LIST", "1m", "timeout_list", 60.0),
        ("TIMEOUT_READ", "500ms", "timeout_read", 0.5),
        ("TIMEOUT_WRITE", "7", "timeout_write", 7.0),
        ("JWT_EXPIRES_IN", "1.5m", "jwt_expires_in", 90),
        ("IDEMPOTENCY_TTL", "2d", "idempotency_ttl", 172_800),
        ("BREAKER_OPEN_SECONDS", "0.5m", "breaker_open_seconds", 30.0),
    ],
)
def test_every_duration_reads_the_same_grammar(name, value, field, seconds):
    settings = Settings.from_env({name: value}, env_file=None)

    assert getattr(settings, field) == seconds


def test_a_token_lifetime_is_whole_seconds():
    with pytest.raises(SettingsError, match="JWT_EXPIRES_IN: must be a whole number of seconds"):
        Settings.from_env({"JWT_EXPIRES_IN": "500ms"}, env_file=None)


def test_a_variable_that_looks_like_a_misspelled_setting_is_warned_about():
    settings = Settings.from_env(
        {"RATE_LIMIT_PER_MIN": "5", "PATH": "/usr/bin", "OTEL_SERVICE_NAME": "x"}, env_file=None
    )

    assert settings.rate_limit_per_minute == 1200  # the misspelled value is not used
    assert settings.startup_warnings()[1:] == [
        "RATE_LIMIT_PER_MIN is not a setting (ignored); did you mean RATE_LIMIT_PER_MINUTE?"
    ]


def test_the_readme_documents_every_setting_and_no_other():
    """Settings are declared once, as fields; the README's table is checked against them."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = [line.split("|")[1] for line in readme.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}

    assert documented == set(VARIABLES)


def test_a_subject_prefix_of_dot_separated_tokens_is_taken():
    assert (
        Settings.from_env(
            {"NATS_SUBJECT_PREFIX": "acme.staging-2"}, env_file=None
        ).nats_subject_prefix
        == "acme.staging-2"
    )
