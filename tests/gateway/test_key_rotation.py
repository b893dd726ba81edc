"""Key rotation: tokens name their key (`kid`); the current secret signs, previous ones still
verify, and a token naming a key the server does not hold is refused."""

from __future__ import annotations

import jwt
import pytest

from app.errors import Unauthorized
from app.gateway.security import TokenVerifier
from app.identity import OPERATOR, Role
from app.modules.auth.contracts import key_id
from app.modules.auth.model import User
from app.modules.auth.tokens import TokenIssuer

OLD = "the-secret-we-signed-with-last-month-0123456789"
NEW = "the-secret-we-sign-with-from-today-0123456789ab"
STRANGER = "a-secret-this-server-never-had-0123456789abcdef"


def issued(secret: str) -> str:
    user = User(
        email="ada@acme.com",
        password_hash="-",
        first_name="Ada",
        last_name="Lovelace",
        role=Role.MODERATOR,
        organization_id="org-1",
    )
    return TokenIssuer(secret, expires_in=600).issue(user)


def test_a_token_names_the_key_that_signed_it_and_the_name_gives_the_key_away():
    header = jwt.get_unverified_header(issued(NEW))

    assert header["kid"] == key_id(NEW)
    assert len(header["kid"]) == 16
    assert NEW not in header["kid"] and header["kid"] not in NEW


def test_after_a_rotation_old_tokens_still_verify_and_new_ones_are_signed_with_the_new_key():
    rotated = TokenVerifier(NEW, (OLD,))

    from_before = rotated.verify(issued(OLD))
    from_now = rotated.verify(issued(NEW))

    assert from_before.role == from_now.role == Role.MODERATOR
    assert jwt.get_unverified_header(issued(NEW))["kid"] == key_id(NEW)


@pytest.mark.parametrize(
    "token",
    [
        issued(STRANGER),  # a key we never had, named by its kid
        jwt.encode(  # our key's name, another key's signature
            {"sub": "u", "iat": 1, "exp": 2**40}, STRANGER, headers={"kid": key_id(NEW)}
        ),
    ],
)
def test_a_token_of_a_key_the_server_does_not_hold_is_refused(token: str):
    with pytest.raises(Unauthorized):
        TokenVerifier(NEW, (OLD,)).verify(token)


def test_once_the_previous_secret_is_dropped_its_tokens_are_refused():
    with pytest.raises(Unauthorized):
        TokenVerifier(NEW).verify(issued(OLD))


def test_a_token_from_before_kids_verifies_against_the_current_secret_only():
    legacy = issued(NEW)
    claims = jwt.decode(legacy, NEW, algorithms=["HS256"])
    without_kid = jwt.encode(claims, NEW, algorithm="HS256")
    old_without_kid = jwt.encode(claims, OLD, algorithm="HS256")

    assert "kid" not in jwt.get_unverified_header(without_kid)
    assert TokenVerifier(NEW, (OLD,)).verify(without_kid).email == "ada@acme.com"
    with pytest.raises(Unauthorized):
        TokenVerifier(NEW, (OLD,)).verify(old_without_kid)


def test_a_token_that_names_the_operator_is_refused_even_when_correctly_signed():
    """Only the command line acts as the operator; no token does, whoever signed it."""
    claims = jwt.decode(issued(NEW), NEW, algorithms=["HS256"])
    operator = jwt.encode({**claims, "sub": OPERATOR}, NEW, headers={"kid": key_id(NEW)})

    with pytest.raises(Unauthorized):
        TokenVerifier(NEW).verify(operator)
