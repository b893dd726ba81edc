"""Access tokens: HS256 JWTs with the claims in `contracts.TokenClaims`, and a `kid` header
naming the key that signed them (`key_id`), so a rotated secret can still verify them."""

from __future__ import annotations

import time
import uuid

import jwt
import msgspec

from app.modules.auth.contracts import TokenClaims, key_id
from app.modules.auth.model import User


class TokenIssuer:
    def __init__(self, secret: str, expires_in: int) -> None:
        self._secret = secret
        self._headers = {"kid": key_id(secret)}
        self.expires_in = expires_in

    def issue(self, user: User) -> str:
        now = int(time.time())
        claims = TokenClaims(
            sub=user.id,
            email=user.email,
            role=user.role_enum,
            organization_id=user.organization_id,
            iat=now,
            exp=now + self.expires_in,
            jti=str(uuid.uuid4()),
        )
        return jwt.encode(
            msgspec.to_builtins(claims), self._secret, algorithm="HS256", headers=self._headers
        )
