"""What a run says about its items' retries: the first few one by one, then one line per interval.

Retries are news (a server restarting, a partner throttling) but they come in storms: the 2,000
items in flight when a connection drops all retry at once. So the first
:data:`LOGGED_INDIVIDUALLY` retries of a run get a line each, and so do the first
:data:`LOGGED_INDIVIDUALLY` permanent errors not retried although retries were configured; after
that they are counted, and the monitor thread writes what was counted as one line every
``progress_interval`` (beside the progress line), and once more at the end of the run. No clock
and no sleep: the interval is the monitor's.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LOGGED_INDIVIDUALLY", "RetryLog"]

#: retries (and, counted apart, permanent errors not retried) that get a line each, per run
LOGGED_INDIVIDUALLY = 10


@dataclass
class _Tally:
    """One kind of decision: lines written, and what was counted since the last line."""

    shown: int = 0
    since: int = 0
    last: str | None = None

    def take(self) -> _Tally:
        """What was counted since the last line, which starts a new count."""
        taken = _Tally(self.shown, self.since, self.last)
        self.since, self.last = 0, None
        return taken


class RetryLog:
    """Turns a run's retry decisions into lines for ``emit``, without flooding the log.

    ``describe`` and ``describe_error`` are the run's (the Airflow layer's redact secrets): every
    item and error in a line went through them. :meth:`retrying` and :meth:`not_retried` may be
    called from any thread; :meth:`summarize` writes one line for what they counted since the
    last one. ``emit=None`` (a run nobody observes) writes nothing. A line that cannot be made or
    written goes to ``on_error``: logging never fails an item.
    """

    def __init__(
        self,
        emit: Callable[[str], None] | None,
        *,
        retries: int,
        describe: Callable[[Any], str],
        describe_error: Callable[[BaseException], str],
        individually: int = LOGGED_INDIVIDUALLY,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._emit = emit
        self._retries = retries
        self._describe = describe
        self._describe_error = describe_error
        self._individually = individually
        self._on_error = on_error
        self._lock = threading.Lock()
        self._retried = _Tally()
        self._permanent = _Tally()

    def retrying(self, position: int, item: Any, exc: BaseException, attempt: int, delay: float) -> None:
        """Item ``position`` failed with ``exc`` on attempt ``attempt``; it runs again in ``delay`` s."""
        if self._emit is not None:
            self._record(
                self._retried,
                lambda: (
                    f"{self._failed(position, item, exc)}; retry {attempt}/{self._retries} in {delay:.1f}s"
                ),
            )

    def not_retried(self, position: int, item: Any, exc: BaseException) -> None:
        """Item ``position`` failed with ``exc``, a permanent error: it is not tried again."""
        if self._emit is not None:
            self._record(
                self._permanent,
                lambda: (
                    f"{self._failed(position, item, exc)}; not retried: the error is permanent "
                    "(item_retry_permanent=True retries it)"
                ),
            )

    def summarize(self) -> None:
        """One line for what was counted since the last line, if anything was."""
        with self._lock:
            retried, permanent = self._retried.take(), self._permanent.take()
        if not retried.since and not permanent.since:
            return
        counts = []
        if retried.since:
            counts.append(f"{retried.since:,} more item {'retry' if retried.since == 1 else 'retries'}")
        if permanent.since:
            errors = "error" if permanent.since == 1 else "errors"
            counts.append(f"{permanent.since:,} more permanent {errors} not retried")
        line = f"{' and '.join(counts)} since the last line"
        if retried.last is not None:
            line += f"; most recent retry: {retried.last}"
        if permanent.last is not None:
            line += f"; most recent not retried: {permanent.last}"
        self._write(line)

    def _record(self, tally: _Tally, make_line: Callable[[], str]) -> None:
        try:
            line = make_line()
        except Exception as exc:
            self._report(exc)
            return
        with self._lock:
            show = tally.shown < self._individually
            if show:
                tally.shown += 1
            else:
                tally.since += 1
                tally.last = line
        if show:
            self._write(line)

    def _failed(self, position: int, item: Any, exc: BaseException) -> str:
        return f"item {position} (input {self._describe(item)}) failed with {self._describe_error(exc)}"

    def _write(self, line: str) -> None:
        assert self._emit is not None
        try:
            self._emit(line)
        except Exception as exc:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None:
            with contextlib.suppress(Exception):
                self._on_error(exc)
