"""Time and identifiers, injectable so tests can pin them."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


_last_ms = 0


def new_id() -> str:
    """A 26-char, time-ordered, URL-safe id (ULID-like: 48-bit ms time + 80 random bits, Crockford base32)."""
    global _last_ms
    ms = max(int(time.time() * 1000), _last_ms)
    _last_ms = ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    out = []
    for _ in range(26):
        out.append(alphabet[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_run_id() -> str:
    """A short run id: event ids are `<run>:<seq>`, so keep it compact and free of ':'."""
    return os.urandom(6).hex()
