"""Liveness: the process answers. Readiness and dependency checks come with the operations work."""

from __future__ import annotations

import msgspec
from litestar import get


class Liveness(msgspec.Struct, frozen=True):
    status: str


@get("/health/live", tags=["health"], summary="The process is up", security=[])
async def live() -> Liveness:
    return Liveness(status="ok")
