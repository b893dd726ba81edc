"""Command counts and latency on each side of the bus, by pattern and outcome."""

from __future__ import annotations

from typing import Any

from app.metrics import metrics


class CommandMetrics:
    """One pattern on one side (`send` or `handle`), with its labelled children looked up once
    (prometheus-client's `labels()` takes a lock and builds a key on every call)."""

    __slots__ = ("_counts", "_pattern", "_seconds", "_side")

    def __init__(self, pattern: str, side: str) -> None:
        self._pattern = pattern
        self._side = side
        self._counts: dict[str, Any] = {}
        self._seconds = metrics().command_seconds.labels(pattern, side)

    def record(self, outcome: str, seconds: float) -> None:
        """One command ended with `outcome` (`ok` or its error code) after `seconds`."""
        counter = self._counts.get(outcome)
        if counter is None:
            counter = metrics().commands.labels(self._pattern, self._side, outcome)
            self._counts[outcome] = counter
        counter.inc()
        self._seconds.observe(seconds)
