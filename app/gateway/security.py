"""Bearer JWTs, verified at the edge (HS256, shared secret), become the commands' `Principal`.

A verified token is cached until it expires (a bounded LRU keyed by the whole token string), so a
client's next request pays a dictionary lookup, not an HMAC and a claims decode. Only tokens that
verified are cached; the same string always verifies the same way, but for the time, which is
checked on every hit.

A token says who its holder was when it was issued; `MemberStates` says who they are now: the
role they act with, and whether they may act at all (a deactivated member's token is 401). The
auth module is asked once per member and the answer kept `MEMBER_STATE_SECONDS` (5 s), so a
role change or a deactivation applies in every gateway within 5 s of its commit, and at once in
the gateway that made it (which forgets its answer). Between two asks, it is a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
import msgspec
from litestar import Request

from app.bus.bus import Bus, Policy
from app.errors import AuthenticationRequired, Unauthorized
from app.gateway.exchange import exchange_of
from app.identity import OPERATOR, Principal, Role
from app.modules.auth.contracts import (
    GET_MEMBER_STATE,
    DeactivatedToken,
    GetMemberState,
    MemberState,
    TokenClaims,
    key_id,
)

BEARER_SCHEME = "BearerToken"


class TokenVerifier:
    """`secret` signs today's tokens; `previous` secrets signed tokens still in use (after a
    rotation). A token's `kid` header names its key; one naming no key we have is 401. A token
    with no `kid` (issued before tokens carried one) is checked against `secret`."""

    def __init__(
        self,
        secret: str,
        previous: tuple[str, ...] = (),
        *,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._keys = {key_id(key): key for key in (*previous, secret)}
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
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._secret if kid is None else self._keys.get(kid)
            if key is None:
                raise Unauthorized("Invalid token", code="INVALID_TOKEN")
            raw = jwt.decode(
                token,
                key,
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
        if claims.sub == OPERATOR:  # only the command line acts as the operator
            raise Unauthorized("Invalid token", code="INVALID_TOKEN")
        principal = Principal(
            user_id=claims.sub,
            organization_id=claims.organization_id,
            role=claims.role,
            email=claims.email,
        )
        return principal, claims.exp


MEMBER_STATE_SECONDS = 5.0
"""How long a member's role and standing, as the auth module gave them, are used."""


class MemberStates:
    def __init__(
        self,
        bus: Bus,
        policy: Policy,
        *,
        seconds: float = MEMBER_STATE_SECONDS,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._policy = policy
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._known: dict[str, tuple[Role, bool, float]] = {}
        """user id -> (role, active, until)"""
        self._asking: dict[str, asyncio.Task[tuple[Role, bool, float]]] = {}
        """The asks in flight, one per member: a burst of their requests shares it."""

    async def current(self, principal: Principal) -> Principal:
        """The principal as the member is now: their current role; 401 when deactivated."""
        known = self._known.get(principal.user_id)
        if known is None or known[2] <= self._clock():
            asking = self._asking.get(principal.user_id)
            if asking is None:
                asking = asyncio.create_task(self._ask(principal))
                self._asking[principal.user_id] = asking
            # Shielded: a request that gives up (its deadline) leaves the ask to the others.
            known = await asyncio.shield(asking)
        role, active, _ = known
        if not active:
            raise DeactivatedToken()
        return (
            principal if role == principal.role else msgspec.structs.replace(principal, role=role)
        )

    async def _ask(self, principal: Principal) -> tuple[Role, bool, float]:
        user_id = principal.user_id
        try:
            state: MemberState = await self._bus.send(
                GET_MEMBER_STATE.pattern, GetMemberState(), principal=principal, policy=self._policy
            )
        finally:
            mine = self._asking.get(user_id) is asyncio.current_task()
            if mine:
                del self._asking[user_id]
        known = (state.role, state.active, self._clock() + self._seconds)
        if mine:  # not forgotten meanwhile (an answer from before a change is not kept)
            if len(self._known) >= self._size:
                self._known.clear()  # a bound, not an eviction policy: they are asked again
            self._known[user_id] = known
        return known

    def forget(self, user_id: str) -> None:
        """The member changed (in this process): ask again at their next request."""
        self._known.pop(user_id, None)
        self._asking.pop(user_id, None)


AUTHENTICATED = "authenticated"
"""`opt={AUTHENTICATED: True}` on a controller or route: a valid bearer token is required."""


async def authenticate(request: Request[Any, Any, Any]) -> None:
    """A valid bearer token of an active member, or 401 before anything else about the request
    is looked at. The caller, with their current role, goes on the request's `Exchange` (for the
    handler and the log line)."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationRequired()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Invalid token", code="INVALID_TOKEN")
    verifier: TokenVerifier = request.app.state.token_verifier
    members: MemberStates = request.app.state.member_states
    principal = await members.current(verifier.verify(token.strip()))
    exchange = exchange_of(request.scope)
    if exchange is not None:
        exchange.principal = principal
