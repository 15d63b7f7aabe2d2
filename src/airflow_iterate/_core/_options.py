"""How a run behaves: concurrency, retries, failure tolerance, rate, limits, reporting intervals.

One value object, validated once when it is built and passed whole (to the runner, its monitor,
the chunk gatherer). The public fields carry the names DAG authors write in ``.iterate(...)``, so
the Airflow layer builds it straight from their keyword arguments.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields
from typing import Literal

from ._errors import IterateUsageError
from ._permanence import is_permanent_class
from ._ratelimit import RateLimit, parse_rate_limit
from ._validate import exception_types, flag, optional_seconds, positive_int, seconds

__all__ = [
    "DEFAULT_ASYNC_CONCURRENCY",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_SYNC_CONCURRENCY",
    "RUN_OPTION_NAMES",
    "RunOptions",
]

# Async items mostly wait on the network: at two round trips of 20 ms per item, 128 in flight
# allow ~3,000 items/s, about what one event loop's CPU can drive; 32 capped a download task at
# a quarter of that. What a remote server sees is bounded by its client (SFTPPool: 4 connections
# x 32 borrowers; httpx and aiohttp: 100 connections), which also queues what exceeds it.
DEFAULT_ASYNC_CONCURRENCY = 128
DEFAULT_SYNC_CONCURRENCY = 8
#: a guard against an input that is not what was meant (a listing of the wrong directory)
DEFAULT_MAX_ITEMS = 1_000_000
#: more items in flight than this is never what was meant (and would exhaust memory or threads)
MAX_CONCURRENCY = 100_000


def _bounded_concurrency(name: str, value: object) -> int:
    count = positive_int(name, value)
    if count > MAX_CONCURRENCY:
        raise IterateUsageError(
            f"{name} must be at most {MAX_CONCURRENCY:,}, got {count:,}; a server sees what its client "
            "allows in flight, so more than that only costs memory"
        )
    return count


def _max_failures(value: object) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IterateUsageError(
            f"max_failures must be a count (int >= 0), a ratio in (0, 1), or None, got {value!r}"
        )
    if isinstance(value, int):
        return positive_int("max_failures", value, minimum=0)
    if not 0 < value < 1:
        raise IterateUsageError(
            f"a max_failures ratio must be in (0, 1), got {value}; use an int for a count"
        )
    return value


def _refuse_never_retried(options: RunOptions) -> None:
    """``item_retry_on=FileNotFoundError`` would never retry anything: say so at parse time."""
    if options.item_retries == 0 or options.item_retry_permanent:
        return
    permanent = [t.__name__ for t in options.item_retry_on if is_permanent_class(t)]
    if permanent:
        one = len(permanent) == 1
        what = "a permanent error" if one else "permanent errors"
        raise IterateUsageError(
            f"item_retry_on names {', '.join(permanent)}, {what}: never retried unless "
            f"item_retry_permanent=True; pass it too to retry {'it' if one else 'them'}"
        )


@dataclass(frozen=True)
class RunOptions:
    """Every knob of a run. Construct it with plain values; it validates and normalises them.

    Durations take seconds or a ``timedelta``. ``concurrency=None`` means the engine's default
    (:data:`DEFAULT_ASYNC_CONCURRENCY` items on one event loop, :data:`DEFAULT_SYNC_CONCURRENCY`
    threads); ``"auto"`` adapts the limit to the server (:mod:`._adaptive`), up to
    ``max_concurrency`` (default: the engine's default), backing off on the errors
    :func:`~._overload.overload_signal` recognises and on those in ``overload_on``.
    ``max_failures`` is a count (``0``: fail on the first failure), a ratio in (0, 1) of the input,
    or ``None`` (never fail because of items). An error that is permanent
    (:func:`~._permanence.is_permanent_error`: a missing file, a refused login, an HTTP 404) is
    retried only with ``item_retry_permanent=True``, whatever ``item_retry_on`` says.

    The last four fields are set by whoever runs the items, not by DAG authors: the deadline, how
    long cancelled items get for their cleanup, exceptions that stop the run at once (never
    retried, re-raised unchanged), and how long the event loop may be held before it is reported.
    """

    concurrency: int | Literal["auto"] | None = None
    max_concurrency: int | None = None
    overload_on: tuple[type[BaseException], ...] = ()
    item_retries: int = 0
    item_retry_delay: float = 1.0
    item_retry_max_delay: float = 300.0
    item_retry_on: tuple[type[BaseException], ...] = (Exception,)
    item_retry_permanent: bool = False
    item_timeout: float | None = None
    max_failures: int | float | None = 0
    rate_limit: RateLimit | None = None
    max_items: int | None = DEFAULT_MAX_ITEMS
    checkpoint_interval: float = 5.0
    progress_interval: float = 10.0
    timeout: float | None = None
    cleanup_timeout: float = 10.0
    stop_on: tuple[type[BaseException], ...] = ()
    loop_block_threshold: float = 0.1
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.concurrency == "auto":
            if self.max_concurrency is not None:
                set_(self, "max_concurrency", _bounded_concurrency("max_concurrency", self.max_concurrency))
        else:
            if self.concurrency is not None:
                if isinstance(self.concurrency, str):
                    raise IterateUsageError(
                        f"concurrency must be an int, None or 'auto', got {self.concurrency!r}"
                    )
                set_(self, "concurrency", _bounded_concurrency("concurrency", self.concurrency))
            if self.max_concurrency is not None:
                raise IterateUsageError(
                    "max_concurrency bounds concurrency='auto'; with a fixed concurrency, leave it out"
                )
        set_(self, "overload_on", exception_types("overload_on", self.overload_on))
        set_(self, "item_retries", positive_int("item_retries", self.item_retries, minimum=0))
        for name in ("item_retry_delay", "item_retry_max_delay", "cleanup_timeout"):
            set_(self, name, seconds(name, getattr(self, name)))
        for name in ("checkpoint_interval", "progress_interval", "loop_block_threshold"):
            set_(self, name, seconds(name, getattr(self, name), allow_zero=False))
        set_(self, "timeout", optional_seconds("timeout", self.timeout, allow_zero=False))
        set_(self, "item_timeout", optional_seconds("item_timeout", self.item_timeout, allow_zero=False))
        set_(self, "item_retry_on", exception_types("item_retry_on", self.item_retry_on))
        set_(self, "item_retry_permanent", flag("item_retry_permanent", self.item_retry_permanent))
        _refuse_never_retried(self)
        set_(self, "stop_on", exception_types("stop_on", self.stop_on))
        set_(self, "max_failures", _max_failures(self.max_failures))
        if self.rate_limit is not None:
            set_(self, "rate_limit", parse_rate_limit(self.rate_limit))
        if self.max_items is not None:
            set_(self, "max_items", positive_int("max_items", self.max_items))

    @property
    def adaptive(self) -> bool:
        """Whether the limit adapts to the server (``concurrency="auto"``)."""
        return self.concurrency == "auto"

    def concurrency_for(self, is_async: bool) -> int:
        """Items running at once on the given engine (with ``"auto"``: at most)."""
        if isinstance(self.concurrency, int):
            return self.concurrency
        if self.max_concurrency is not None:
            return self.max_concurrency
        return DEFAULT_ASYNC_CONCURRENCY if is_async else DEFAULT_SYNC_CONCURRENCY

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): exponential, with jitter.

        The jitter ("equal jitter": between half and all of the exponential delay) spreads the
        retries of items that failed together, e.g. when a server restarted under all of them.
        """
        # The exponent is capped: 2.0 ** 1024 overflows, and the cap is long past any max delay.
        ceiling = min(self.item_retry_max_delay, self.item_retry_delay * 2.0 ** min(attempt - 1, 64))
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

    def failures_exceeded(self, failed: int, total: int) -> bool:
        """Whether ``failed`` items of ``total`` are more than the run tolerates."""
        limit = self.failure_limit(total)
        return limit is not None and failed > limit


#: the fields a DAG author sets (the rest belong to whoever runs the items)
RUN_OPTION_NAMES: frozenset[str] = frozenset(
    f.name
    for f in fields(RunOptions)
    if not f.name.startswith("_")
    and f.name not in ("timeout", "cleanup_timeout", "stop_on", "loop_block_threshold")
)
