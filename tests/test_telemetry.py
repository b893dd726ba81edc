"""What a process's spans say it is: the role by default, the environment's name when set."""

from __future__ import annotations

import pytest

from app.main import SERVICE_NAME
from app.telemetry import resource
from app.worker import service_name


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)


def test_each_process_is_named_for_its_role():
    names = [
        resource(name).attributes["service.name"]
        for name in (SERVICE_NAME, service_name(["events"]), service_name(["auth", "events"]))
    ]

    assert names == ["eventboard-gateway", "eventboard-events", "eventboard-auth+events"]


def test_the_environment_names_the_service_when_it_says_so(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,deployment.environment=staging"
    )
    from_attributes = resource("eventboard-events").attributes
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-events")
    from_service_name = resource("eventboard-events").attributes

    assert from_attributes["service.name"] == "from-attributes"
    assert from_attributes["deployment.environment"] == "staging"
    assert from_service_name["service.name"] == "billing-events"
