"""bcrypt, always in a worker thread: 250 ms a hash at 12 rounds must not stall the event loop."""

from __future__ import annotations

import asyncio

import bcrypt


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self._rounds = rounds
        self._decoy: bytes | None = None

    async def hash(self, password: str) -> str:
        hashed = await asyncio.to_thread(
            bcrypt.hashpw, password.encode(), bcrypt.gensalt(self._rounds)
        )
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password. With no hash (unknown user), check a decoy so both take as long."""
        if hashed is None:
            if self._decoy is None:
                self._decoy = (await self.hash("decoy-password-for-unknown-users")).encode()
            await asyncio.to_thread(bcrypt.checkpw, password.encode(), self._decoy)
            return False
        return await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed.encode())
