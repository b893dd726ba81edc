"""Per-route bus policy: how long the gateway waits in total, and how many attempts it makes.
Whether a timed-out attempt may be repeated is the command's own declaration (its module's
`contracts.py`), not the route's.

The values come from settings (the seeds' by default: auth 5 s, GET /events 10 s, GET /events/{id}
5 s, writes 10 s; attempts: login and signup 2, /auth/me 3, reads 3, writes 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.bus.bus import Policy
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class RoutePolicies:
    login: Policy
    signup: Policy
    me: Policy
    list: Policy
    read_one: Policy
    write: Policy

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutePolicies:
        return cls(
            login=Policy(timeout=settings.timeout_auth, attempts=settings.attempts_auth),
            signup=Policy(timeout=settings.timeout_auth, attempts=settings.attempts_auth),
            me=Policy(timeout=settings.timeout_auth, attempts=settings.attempts_me),
            list=Policy(timeout=settings.timeout_list, attempts=settings.attempts_read),
            read_one=Policy(timeout=settings.timeout_read, attempts=settings.attempts_read),
            write=Policy(timeout=settings.timeout_write, attempts=settings.attempts_write),
        )
