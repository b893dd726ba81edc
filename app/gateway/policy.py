"""Per-route bus policy: the total time the gateway waits for a module (the seeds' values)."""

from __future__ import annotations

from app.bus.bus import Policy

AUTH = Policy(timeout=5.0)
LIST = Policy(timeout=10.0)
READ_ONE = Policy(timeout=5.0)
WRITE = Policy(timeout=10.0)
