"""Bearer JWTs, verified at the edge (HS256, shared secret), become the commands' `Principal`.

A verified token is cached until it expires (a bounded LRU keyed by the whole token string), so a
client's next request pays a dictionary lookup, not an HMAC and a claims decode. Only tokens that
verified are cached; the same string always verifies the same way, but for the time, which is
checked on every hit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
import msgspec
from litestar import Request

from app.errors import AuthenticationRequired, Unauthorized
from app.gateway.exchange import exchange_of
from app.identity import Principal
from app.modules.auth.contracts import TokenClaims

BEARER_SCHEME = "BearerToken"


class TokenVerifier:
    def __init__(
        self, secret: str, *, cache_size: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._cache: OrderedDict[str, tuple[Principal, int]] = OrderedDict()
        self._cache_size = cache_size
        self._clock = clock

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires = cached
            if self._clock() < expires:
                self._cache.move_to_end(token)
                return principal
            del self._cache[token]
            raise Unauthorized("Token has expired", code="TOKEN_EXPIRED")
        principal, expires = self._verify(token)
        if self._cache_size > 0:
            self._cache[token] = (principal, expires)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    @property
    def cached(self) -> int:
        return len(self._cache)

    def _verify(self, token: str) -> tuple[Principal, int]:
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
        principal = Principal(
            user_id=claims.sub,
            organization_id=claims.organization_id,
            role=claims.role,
            email=claims.email,
        )
        return principal, claims.exp


AUTHENTICATED = "authenticated"
"""`opt={AUTHENTICATED: True}` on a controller or route: a valid bearer token is required."""


def authenticate(request: Request[Any, Any, Any]) -> None:
    """A valid bearer token, or 401 before anything else about the request is looked at. The
    caller goes on the request's `Exchange` (for the handler and the log line)."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationRequired()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Invalid token", code="INVALID_TOKEN")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(token.strip())
    exchange = exchange_of(request.scope)
    if exchange is not None:
        exchange.principal = principal
