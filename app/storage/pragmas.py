"""One list of SQLite PRAGMAs, for the commands' connections and the engine's alike."""

from __future__ import annotations

SQLITE_BUSY_TIMEOUT_MS = 5000


def sqlite_pragmas(busy_timeout_ms: int) -> tuple[str, ...]:
    """The settings of every SQLite connection, the commands' and the engine's
    (app.storage.engine) alike: WAL, synchronous NORMAL (durable at each checkpoint, safe against
    corruption), foreign keys on, and how long a statement waits for another process's lock."""
    return (
        f"PRAGMA busy_timeout = {busy_timeout_ms}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    )
