"""Time and identifiers, injectable so tests can pin them."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


_POOL_BYTES = 4096
_pool = b""
_used = 0
_pool_lock = threading.Lock()


def random_bytes(n: int) -> bytes:
    """`n` bytes of the OS's CSPRNG, drawn 4 KiB at a time: one system call per ~100 messages' ids, not one
    per id."""
    global _pool, _used
    with _pool_lock:
        if _used + n > len(_pool):
            _pool, _used = os.urandom(max(_POOL_BYTES, n)), 0
        _used += n
        return _pool[_used - n : _used]


def _drop_pool() -> None:
    global _pool, _used, _pool_lock
    _pool, _used, _pool_lock = b"", 0, threading.Lock()  # the lock too: a thread may have held it at the fork


# a forked child must not hand out the bytes its parent hands out too
os.register_at_fork(after_in_child=_drop_pool)

_last_ms = 0


def new_id() -> str:
    """A 26-char, time-ordered, URL-safe id (ULID-like: 48-bit ms time + 80 random bits, Crockford base32)."""
    global _last_ms
    ms = max(int(time.time() * 1000), _last_ms)
    _last_ms = ms
    value = (ms << 80) | int.from_bytes(random_bytes(10), "big")
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    out = []
    for _ in range(26):
        out.append(alphabet[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_run_id() -> str:
    """A short run id: event ids are `<run>:<seq>`, so keep it compact and free of ':'."""
    return random_bytes(6).hex()
