"""What a controller needs for one request, as one dependency.

Litestar resolves a handler's independent dependencies concurrently, in a task group with a task
per dependency, on every request; one dependency is a plain await. So the bus, the route
policies, the rate limits and the caller come together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from app.bus.bus import Bus
from app.bus.envelope import Principal
from app.errors import Unauthorized
from app.gateway.policy import RoutePolicies
from app.gateway.ratelimit import RateLimits


@dataclass(frozen=True, slots=True)
class Call:
    bus: Bus
    policies: RoutePolicies
    limits: RateLimits
    principal_or_none: Principal | None

    @property
    def principal(self) -> Principal:
        """The caller the `authenticated` guard established."""
        if self.principal_or_none is None:
            raise Unauthorized("Authentication required", code="AUTH_REQUIRED")
        return self.principal_or_none


@dataclass(frozen=True, slots=True)
class CallFactory:
    bus: Bus
    policies: RoutePolicies
    limits: RateLimits

    def __call__(self, request: Request[Any, Any, Any]) -> Call:
        return Call(self.bus, self.policies, self.limits, request.state.get("principal"))


TheCall = NamedDependency[Call]
