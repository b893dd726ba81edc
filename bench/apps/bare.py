"""A bare Litestar app: the floor under any route, for comparisons of servers and event loops.

    uvicorn bench.apps.bare:app

- `GET /plain`: answers at once, never waiting on anything (as a route whose handler finishes
  without suspending);
- `GET /yield`: the same after giving the loop one turn (`asyncio.sleep(0)`).
"""

from __future__ import annotations

import asyncio

from litestar import Litestar, get


@get("/plain")
async def plain() -> dict[str, int]:
    return {"ok": 1}


@get("/yield")
async def yielded() -> dict[str, int]:
    await asyncio.sleep(0)
    return {"ok": 1}


app = Litestar([plain, yielded])
