"""The HTTP edge as a Litestar app: routes, validation, auth, errors, CORS, OpenAPI at /api."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app.bus.bus import Bus
from app.gateway.auth import AuthController
from app.gateway.correlation import CorrelationASGI
from app.gateway.events import EventsController
from app.gateway.health import live
from app.gateway.policy import RoutePolicies
from app.gateway.problems import EXCEPTION_HANDLERS
from app.gateway.security import BEARER_SCHEME, TokenVerifier, current_principal
from app.gateway.validation import validate_request
from app.settings import Settings

EXPOSED_HEADERS = ["X-Correlation-ID", "X-Response-Time", "Idempotent-Replayed", "Retry-After"]


def create_gateway(
    settings: Settings,
    bus: Bus,
    *,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Litestar:
    def provide_bus() -> Bus:
        return bus

    policies = RoutePolicies.from_settings(settings)

    def provide_policies() -> RoutePolicies:
        return policies

    app = Litestar(
        route_handlers=[AuthController, EventsController, live],
        dependencies={
            "bus": Provide(provide_bus, sync_to_thread=False),
            "policies": Provide(provide_policies, sync_to_thread=False),
            "principal": Provide(current_principal, sync_to_thread=False),
        },
        before_request=validate_request,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"token_verifier": TokenVerifier(settings.jwt_secret)}),
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_allow_origins), expose_headers=EXPOSED_HEADERS
        ),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=_openapi(),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        logging_config=None,
        debug=False,
    )
    app.asgi_handler = CorrelationASGI(app.asgi_handler)
    return app


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="EventBoard API",
        version="1.0.0",
        description=(
            "Events with an approval workflow (DRAFT -> SUBMITTED -> APPROVED | REJECTED), "
            "JWT auth, roles and strict tenant isolation. Errors are RFC 9457 problem+json."
        ),
        path="/api",
        render_plugins=[SwaggerRenderPlugin(path="/")],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
        use_handler_docstrings=True,
    )


__all__ = ["create_gateway"]
