"""Backoff before opening the stream again."""

from __future__ import annotations

import random

MAX_DELAY_S = 30.0
MAX_RETRY_AFTER_S = 60.0
_RNG = random.Random()  # noqa: S311 (jitter, not secrets)


def backoff_delay(
    attempt: int, base_s: float, retry_after_s: float | None = None, *, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 0), or None to give up.

    Exponential with full jitter on top, never shorter than the service's Retry-After; a Retry-After
    longer than MAX_RETRY_AFTER_S means giving up now rather than holding the user.
    """
    if retry_after_s is not None and retry_after_s > MAX_RETRY_AFTER_S:
        return None
    exponential = min(MAX_DELAY_S, base_s * 2**attempt)
    jitter: float = (rng or _RNG).uniform(0, exponential / 2)
    return float(max(min(MAX_DELAY_S, exponential + jitter), retry_after_s or 0.0))
