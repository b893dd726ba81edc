"""The app as operators run it: uvicorn in a process of its own, on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[str] = []
        self._seen: dict[str, asyncio.Event] = {}

    async def read_log(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            for text, event in self._seen.items():
                if text in line:
                    event.set()

    async def wait_for_log(self, text: str) -> None:
        event = self._seen.setdefault(text, asyncio.Event())
        if any(text in line for line in self.lines):
            event.set()
        await asyncio.wait_for(event.wait(), timeout=30)


@asynccontextmanager
async def uvicorn(tmp_path: Path, **env: str) -> AsyncIterator[Server]:
    port = free_port()
    variables = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'server.db'}",
        "JWT_SECRET": TEST_SECRET,
        "BCRYPT_ROUNDS": "4",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--no-proxy-headers", "--loop", "asyncio",
        cwd=ROOT, env=variables, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}")
    reader = asyncio.create_task(server.read_log())
    try:
        await server.wait_for_log("Application startup complete")
        yield server
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await reader
