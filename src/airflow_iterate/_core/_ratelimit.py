"""A rate limit shared by every item of a run, for the event loop and for threads alike.

It schedules start times rather than counting tokens: each acquire reserves the next free slot
(``1 / rate`` seconds after the previous one, allowing a burst of ``burst`` slots after idling)
and waits until it. One lock-protected float is all the state, so the same object serves async
items (``await limiter.acquire()``) and threads (``limiter.acquire_blocking()``).
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from dataclasses import dataclass

from ._errors import IterateUsageError

__all__ = ["RateLimit", "RateLimiter", "parse_rate_limit"]

_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0}
#: one item a day: a slower rate means a run that never ends (and 1 / rate overflows near 0)
MIN_PER_SECOND = 1 / 86_400
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class RateLimit:
    """At most ``per_second`` item starts per second, averaged; ``burst`` may start at once."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        rate = self.per_second
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            raise IterateUsageError(f"a rate limit must be a finite number per second, got {rate!r}")
        if rate < MIN_PER_SECOND:
            raise IterateUsageError(
                f"a rate limit must allow at least one item a day ({MIN_PER_SECOND:.3g}/s), got {rate!r}"
            )
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise IterateUsageError(f"a rate limit's burst must be an int >= 1, got {self.burst!r}")

    def __str__(self) -> str:
        return f"{self.per_second:g}/s"


def parse_rate_limit(value: object) -> RateLimit:
    """Parse ``"200/s"``, ``"30/min"``, ``"1000/h"`` (or a number, meaning per second)."""
    if isinstance(value, RateLimit):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return RateLimit(float(value))  # which refuses NaN, infinity and rates below one a day
    match = _PATTERN.match(value) if isinstance(value, str) else None
    if match is None or match.group(2) not in _PERIODS or float(match.group(1)) <= 0:
        raise IterateUsageError(
            f"rate_limit must look like '200/s', '30/min' or '1000/h' (or a positive number per second), "
            f"got {value!r}"
        )
    return RateLimit(float(match.group(1)) / _PERIODS[match.group(2)])


class RateLimiter:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._interval = 1.0 / limit.per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Reserve the next slot; return how long to wait for it."""
        with self._lock:
            now = time.monotonic()
            earliest = now - (self.limit.burst - 1) * self._interval
            slot = max(self._next, earliest)
            self._next = slot + self._interval
            return slot - now

    async def acquire(self) -> None:
        delay = self._reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def acquire_blocking(self) -> None:
        delay = self._reserve()
        if delay > 0:
            time.sleep(delay)
