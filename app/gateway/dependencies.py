"""What a controller needs for one request, read from the request itself: no dependency
injection (Litestar resolves injected dependencies, and runs guards, with work of their own on
every request; these are two attribute lookups).

    gateway = gateway_of(request)
    await gateway.bus.send(..., principal=principal_of(request), policy=gateway.policies.write)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from app.bus.bus import Bus
from app.errors import AuthenticationRequired
from app.gateway.exchange import exchange_of
from app.gateway.policy import RoutePolicies
from app.gateway.ratelimit import RateLimits
from app.identity import Principal


@dataclass(frozen=True, slots=True)
class Gateway:
    """The app's parts every controller uses, kept in the app's state."""

    bus: Bus
    policies: RoutePolicies
    limits: RateLimits


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """The caller, as the bearer check before the handler established it."""
    exchange = exchange_of(request.scope)
    if exchange is None or exchange.principal is None:
        raise AuthenticationRequired()
    return exchange.principal
