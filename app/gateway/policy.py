"""Per-route bus policy: how long the gateway waits in total, and how many attempts it makes.

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
            # A login changes nothing, but is never retried after a timeout: it is CPU-heavy, and
            # retrying it under overload is how overload grows.
            login=Policy(timeout=settings.timeout_auth, attempts=settings.attempts_auth),
            signup=Policy(timeout=settings.timeout_auth, attempts=settings.attempts_auth),
            me=Policy(timeout=settings.timeout_auth, attempts=settings.attempts_me, read=True),
            list=Policy(timeout=settings.timeout_list, attempts=settings.attempts_read, read=True),
            read_one=Policy(
                timeout=settings.timeout_read, attempts=settings.attempts_read, read=True
            ),
            write=Policy(timeout=settings.timeout_write, attempts=settings.attempts_write),
        )
