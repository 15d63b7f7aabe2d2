"""How a run behaves: concurrency, retries, failure tolerance, rate, limits. Validated once, up front."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ._errors import IterateUsageError
from ._ratelimit import RateLimit, parse_rate_limit

__all__ = ["RunOptions"]


def _positive_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise IterateUsageError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise IterateUsageError(f"{name} must be at least {minimum}, got {value}")
    return value


def _seconds(name: str, value: object, *, allow_zero: bool = True) -> float:
    seconds = getattr(value, "total_seconds", None)
    number = seconds() if callable(seconds) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
        raise IterateUsageError(
            f"{name} must be a number of seconds or a timedelta, got {type(value).__name__} {value!r}"
        )
    if number < 0 or (number == 0 and not allow_zero):
        raise IterateUsageError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(number)


def check_concurrency(concurrency: object) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise IterateUsageError(
            f"concurrency must be a positive int, got {type(concurrency).__name__} {concurrency!r}"
        )
    if concurrency < 1:
        raise IterateUsageError(f"concurrency must be at least 1, got {concurrency}")
    return concurrency


def check_max_failures(value: object) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IterateUsageError(
            f"max_failures must be a count (int >= 0), a ratio in (0, 1), or None, got {value!r}"
        )
    if isinstance(value, int):
        if value < 0:
            raise IterateUsageError(f"max_failures must not be negative, got {value}")
        return value
    if not 0 < value < 1:
        raise IterateUsageError(
            f"a max_failures ratio must be in (0, 1), got {value}; use an int for a count"
        )
    return value


def check_exception_types(name: str, value: object) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise IterateUsageError(f"{name} must be an exception class or a tuple of them, got {t!r}")
    return types  # type: ignore[return-value]


@dataclass(frozen=True)
class RunOptions:
    """Every knob of a run. Construct it with plain values; it validates and normalises them.

    ``retry_delay`` / ``retry_max_delay`` / ``timeout`` take seconds or a ``timedelta``.
    ``max_failures`` is a count (``0``: fail on the first failure), a ratio in (0, 1) of the
    input, or ``None`` (never fail because of items). Exceptions in ``stop_on`` are never retried,
    stop the run at once and are re-raised unchanged.
    """

    concurrency: int
    timeout: float | None = None
    cleanup_timeout: float = 10.0
    retries: int = 0
    retry_delay: float = 1.0
    retry_max_delay: float = 300.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    stop_on: tuple[type[BaseException], ...] = ()
    max_failures: int | float | None = 0
    rate_limit: RateLimit | None = None
    max_items: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "concurrency", check_concurrency(self.concurrency))
        if self.timeout is not None:
            set_(self, "timeout", _seconds("timeout", self.timeout, allow_zero=False))
        set_(self, "cleanup_timeout", _seconds("cleanup_timeout", self.cleanup_timeout))
        set_(self, "retries", _positive_int("item_retries", self.retries, minimum=0))
        set_(self, "retry_delay", _seconds("item_retry_delay", self.retry_delay))
        set_(self, "retry_max_delay", _seconds("item_retry_max_delay", self.retry_max_delay))
        set_(self, "retry_on", check_exception_types("item_retry_on", self.retry_on))
        set_(self, "stop_on", check_exception_types("stop_on", self.stop_on))
        set_(self, "max_failures", check_max_failures(self.max_failures))
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            set_(self, "rate_limit", parse_rate_limit(self.rate_limit))
        if self.max_items is not None:
            set_(self, "max_items", _positive_int("max_items", self.max_items, minimum=1))

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): exponential, with jitter.

        The jitter ("equal jitter": between half and all of the exponential delay) spreads the
        retries of items that failed together, e.g. when a server restarted under all of them.
        """
        ceiling = min(self.retry_max_delay, self.retry_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def failure_limit(self, total: int | None) -> int | None:
        """The number of failures the run tolerates, or None when unlimited or not yet knowable."""
        if self.max_failures is None:
            return None
        if isinstance(self.max_failures, int):
            return self.max_failures
        if total is None:
            return None  # a ratio of an input of unknown size is checked at the end
        return math.floor(self.max_failures * total)
