"""The verified-token cache: a repeat request skips the HMAC, but never outlives the token, never
serves a token that did not verify, and stays within its bound."""

from __future__ import annotations

import jwt
import pytest

from app.errors import Unauthorized
from app.gateway.security import TokenVerifier

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token(sub: str, *, iat: int, exp: int, secret: str = SECRET) -> str:
    claims = {
        "sub": sub,
        "email": f"{sub}@example.com",
        "role": "USER",
        "organizationId": "org-1",
        "iat": iat,
        "exp": exp,
        "jti": f"jti-{sub}",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def now() -> int:
    import time

    return int(time.time())


def test_a_repeat_verification_is_served_from_the_cache() -> None:
    verifier = TokenVerifier(SECRET)
    issued = token("user-1", iat=now(), exp=now() + 600)
    first = verifier.verify(issued)
    assert verifier.cached == 1
    assert verifier.verify(issued) is first  # the same Principal object: no second decode


def test_a_cached_token_still_expires() -> None:
    clock = Clock(now())
    verifier = TokenVerifier(SECRET, clock=clock)
    issued = token("user-1", iat=now(), exp=now() + 60)
    verifier.verify(issued)
    clock.now += 61
    with pytest.raises(Unauthorized) as raised:
        verifier.verify(issued)
    assert raised.value.code == "TOKEN_EXPIRED"
    assert verifier.cached == 0


def test_tokens_that_fail_are_never_cached() -> None:
    verifier = TokenVerifier(SECRET)
    other = "another-secret-that-is-long-enough"
    forged = token("user-1", iat=now(), exp=now() + 600, secret=other)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            verifier.verify(forged)
    assert verifier.cached == 0
    good = token("user-1", iat=now(), exp=now() + 600)
    verifier.verify(good)
    header, payload, signature = good.split(".")
    with pytest.raises(Unauthorized):  # a tampered copy of a cached token is a different key
        verifier.verify(f"{header}.{payload}.{signature[:-2]}AA")


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    verifier = TokenVerifier(SECRET, cache_size=2)
    a, b, c = (token(name, iat=now(), exp=now() + 600) for name in "abc")
    first_a = verifier.verify(a)
    first_b = verifier.verify(b)
    verifier.verify(a)  # a is now the most recently used
    verifier.verify(c)  # evicts b
    assert verifier.cached == 2
    assert verifier.verify(a) is first_a
    assert verifier.verify(b) is not first_b  # verified afresh: it had been evicted
