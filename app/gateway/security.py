"""Bearer JWTs, verified at the edge (HS256, shared secret), become the commands' `Principal`."""

from __future__ import annotations

from typing import Any

import jwt
import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from app.bus.envelope import Principal
from app.errors import Unauthorized
from app.modules.auth.contracts import TokenClaims

BEARER_SCHEME = "BearerToken"


class TokenVerifier:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, token: str) -> Principal:
        try:
            raw = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token has expired", code="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise Unauthorized("Invalid token", code="INVALID_TOKEN") from None
        try:
            claims = msgspec.convert(raw, TokenClaims)
        except msgspec.ValidationError:
            raise Unauthorized("Invalid token", code="INVALID_TOKEN") from None
        return Principal(
            user_id=claims.sub,
            organization_id=claims.organization_id,
            role=claims.role,
            email=claims.email,
        )


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard: a valid bearer token, or 401 before anything else about the request is looked at.
    (Async on purpose: Litestar runs a sync guard in a worker thread.)"""
    header = connection.headers.get("authorization")
    if not header:
        raise Unauthorized("Authentication required", code="AUTH_REQUIRED")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Invalid token", code="INVALID_TOKEN")
    verifier: TokenVerifier = connection.app.state.token_verifier
    connection.state.principal = verifier.verify(token.strip())


def current_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency: the principal the `authenticated` guard established."""
    principal: Principal | None = request.state.get("principal")
    if principal is None:
        raise Unauthorized("Authentication required", code="AUTH_REQUIRED")
    return principal
