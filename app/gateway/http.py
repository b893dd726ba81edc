"""The HTTP edge as a Litestar app: routes, validation, auth, errors, rate limits, CORS, metrics,
tracing, probes, and interactive API docs at /api served without any CDN."""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.opentelemetry import (
    OpenTelemetryConfig,
    OpenTelemetryInstrumentationMiddleware,
)
from litestar.plugins.prometheus import PrometheusController
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from opentelemetry.sdk.trace import TracerProvider
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.bus.bus import Bus
from app.gateway.controllers.auth import AuthController
from app.gateway.controllers.events import EventsController
from app.gateway.controllers.health import HealthController, Probes
from app.gateway.controllers.organization import OrganizationController
from app.gateway.dependencies import Gateway
from app.gateway.edge import NOT_MEASURED, Edge
from app.gateway.openapi import ContractJsonPlugin, ContractSwaggerPlugin, Publisher
from app.gateway.policy import RoutePolicies
from app.gateway.problems import EXCEPTION_HANDLERS
from app.gateway.ratelimit import RateLimits
from app.gateway.security import (
    AUTHENTICATED,
    BEARER_SCHEME,
    MemberStates,
    TokenVerifier,
    authenticate,
)
from app.gateway.validation import validate_request
from app.settings import Settings

EXPOSED_HEADERS = [
    "X-Correlation-ID",
    "X-Response-Time",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]
DOCS_ASSETS = "/api/assets"


def create_gateway(
    settings: Settings,
    bus: Bus,
    *,
    probes: Probes,
    limits: RateLimits,
    tracer_provider: TracerProvider | None = None,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Litestar:
    policies = RoutePolicies.from_settings(settings)

    app = Litestar(
        route_handlers=[
            AuthController,
            EventsController,
            OrganizationController,
            HealthController,
            PrometheusController,
            create_static_files_router(
                path=DOCS_ASSETS, directories=[_swagger_ui_assets()], include_in_schema=False
            ),
        ],
        dependencies={"probes": Provide(lambda: probes, sync_to_thread=False)},
        before_request=_before_request,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State(
            {
                "gateway": Gateway(bus, policies, limits),
                "token_verifier": TokenVerifier(settings.jwt_secret, settings.jwt_previous_secrets),
                "member_states": MemberStates(bus, policies.read_one),
            }
        ),
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
    # Outside in: forwarded headers -> the request's span -> the edge -> Litestar.
    handler: Any = Edge(app.asgi_handler, limits)
    if tracer_provider is not None:
        # A span per request (an incoming traceparent is honoured), around the edge, so that
        # the request's log line carries its trace id.
        handler = OpenTelemetryInstrumentationMiddleware(
            handler,
            OpenTelemetryConfig(
                tracer_provider=tracer_provider, exclude=[f"^{p}" for p in NOT_MEASURED]
            ),
        )
    if settings.trusted_proxies:
        # The client address every limit and log uses: X-Forwarded-For counts only when the
        # peer is a trusted proxy (uvicorn's own implementation; `make run` tells uvicorn
        # itself to trust none, so this is the one place forwarded headers are believed).
        handler = ProxyHeadersMiddleware(handler, trusted_hosts=list(settings.trusted_proxies))
    app.asgi_handler = handler
    _current_allow_headers(app)
    return app


def _current_allow_headers(app: Litestar) -> None:
    """Litestar 2 builds a path's OPTIONS handler for the first route registered on it, and that
    handler reads the methods of *that* route: when routes of one path are merged (GET and
    PATCH /events/{id} from separate handlers), `Allow` lists only some methods. Point each
    OPTIONS handler's route at the merged one's methods."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            function = getattr(handler.fn, "__closure__", None) and handler.fn
            if function is None or function.__name__ != "options_handler":
                continue
            for cell in function.__closure__ or ():
                stale = cell.cell_contents
                if isinstance(stale, HTTPRoute) and stale is not route:
                    stale.methods = route.methods


async def _before_request(request: Request[Any, Any, Any]) -> None:
    """Before every handler: the bearer token where the route needs one (401 before anything
    else), then the request's query, headers and body against the route's contracts (400)."""
    if request.method == "OPTIONS":  # Allow is public, as for a CORS preflight
        return
    if request.route_handler.opt.get(AUTHENTICATED):
        await authenticate(request)
    await validate_request(request)


def _swagger_ui_assets() -> Path:
    """Swagger UI 5 (OpenAPI 3.1), as the swagger-ui-py package ships it: served from here, so the
    docs page needs no CDN. Located without importing the package (its web handlers are unused)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing: run `uv sync`")
    return Path(spec.submodule_search_locations[0]) / "static"


def _openapi() -> OpenAPIConfig:
    publisher = Publisher()
    return OpenAPIConfig(
        title="EventBoard API",
        version="1.0.0",
        description=(
            "Events with an approval workflow (DRAFT -> SUBMITTED -> APPROVED | REJECTED), "
            "JWT auth, roles and strict tenant isolation. Errors are RFC 9457 problem+json."
        ),
        path="/api",
        render_plugins=[
            ContractSwaggerPlugin(
                publisher,
                path="/",
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' href='{DOCS_ASSETS}/favicon-32x32.png'>",
            ),
            ContractJsonPlugin(publisher),
        ],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
        use_handler_docstrings=True,
    )
