"""schemathesis hooks for the schema check (schemathesis.toml names this module).

One hook: a generated Idempotency-Key that is valid is made unique per call, as a client makes a
new key for each request it means as new. Reusing a key is stateful (a replay answers what the
first request got, even when that resource has since been deleted; a different request with the
key is 422), which no schema states; tests/e2e/test_idempotency*.py cover it. An invalid key is
sent as generated, so the header's pattern is still checked both ways.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

from app.gateway.idempotency import HEADER, KEY_PATTERN

_VALID = re.compile(KEY_PATTERN)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    key = (case.headers or {}).get(HEADER)
    if isinstance(key, str) and _VALID.match(key):
        case.headers[HEADER] = f"{key[:200]}.{uuid.uuid4().hex}"
