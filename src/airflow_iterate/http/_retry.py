"""When the client sends a request again, and how long it waits first: :class:`RetryPolicy`.

What a REST user expects, bounded:

* **Overload** (``429 Too Many Requests``, ``503 Service Unavailable``): the server did not do the
  request, so it is sent again whatever its method, after the ``Retry-After`` the server asked
  for (seconds or an HTTP date), else after a backoff with jitter. Waiting out a ``Retry-After``
  is what the server asked for, not a failure: it counts against ``max_throttled`` (30 per
  request), not ``attempts``, so that a burst of items against a rate-limited API completes at
  the API's rate. A ``Retry-After`` longer than ``max_retry_after`` is not waited out: the error is
  raised (with its ``retry_after``), so that one "come back in an hour" does not hold an item for
  an hour.
* **Gateway errors** (``502``, ``504``): the server behind the gateway may have done the
  request, so only idempotent methods (``GET``, ``HEAD``, ``OPTIONS``, ``PUT``, ``DELETE``,
  ``TRACE``) are sent again.
* **No answer** (a refused, reset or dropped connection, a timeout): a request that surely never
  left (refused, no route) is sent again whatever its method; one that may have reached the server
  only when idempotent, or when the call says it is (``idempotent=True``: a ``POST`` with an
  idempotency key) or the policy allows it (``retry_non_idempotent=True``).

A request is sent ``attempts`` times at most while it fails, plus the ``Retry-After`` waits it
was asked for (``max_throttled`` at most). Backoff doubles from ``backoff`` up to
``max_backoff``, each delay drawn between half and all of it (jitter, so that items refused
together do not come back together).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .._core._validate import positive_int, seconds
from ._errors import HTTPClientUsageError

__all__ = ["IDEMPOTENT_METHODS", "RetryPolicy", "parse_retry_after"]

#: methods that mean the same when sent twice (RFC 9110, 9.2.2)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries one request (see the module's docstring); a value, shareable.

    :param attempts: times a request is sent at most while it fails (1: never retried).
    :param statuses: answers that mean "not done, come back later": retried for every method.
    :param idempotent_statuses: answers retried for idempotent methods only.
    :param backoff: the first delay when the server gives no ``Retry-After``; doubles per retry.
    :param max_backoff: the longest such delay.
    :param max_retry_after: the longest ``Retry-After`` waited for; a longer one raises.
    :param max_throttled: ``Retry-After`` waits (429 or 503 with the header) per request at most.
    :param retry_non_idempotent: retry ``POST`` and ``PATCH`` after a connection that broke
        after they were sent (they may have been done: only for APIs that deduplicate).
    """

    attempts: int = 4
    statuses: frozenset[int] = frozenset({429, 503})
    idempotent_statuses: frozenset[int] = frozenset({502, 504})
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    max_throttled: int = 30
    retry_non_idempotent: bool = False

    def __post_init__(self) -> None:
        positive_int("attempts", self.attempts, error=HTTPClientUsageError)
        positive_int("max_throttled", self.max_throttled, minimum=0, error=HTTPClientUsageError)
        for name in ("backoff", "max_backoff", "max_retry_after"):
            seconds(name, getattr(self, name), error=HTTPClientUsageError)
        for name in ("statuses", "idempotent_statuses"):
            value = getattr(self, name)
            try:
                codes = frozenset(int(code) for code in value)
            except (TypeError, ValueError):
                raise HTTPClientUsageError(
                    f"{name} must be a set of HTTP status codes, got {value!r}"
                ) from None
            if not all(100 <= code <= 599 for code in codes):
                raise HTTPClientUsageError(f"{name} must be HTTP status codes (100-599), got {sorted(codes)}")
            object.__setattr__(self, name, codes)

    def retries_status(self, status: int, idempotent: bool) -> bool:
        return status in self.statuses or (idempotent and status in self.idempotent_statuses)

    def backoff_delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The pause before retry number ``retry`` (1 for the first) without a ``Retry-After``."""
        full: float = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        return full / 2 + (rng or random).random() * full / 2


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (RFC 9110, 10.2.3): a number of seconds or an
    HTTP date; ``None`` when there is none or it cannot be read."""
    if not value:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, number) if math.isfinite(number) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
