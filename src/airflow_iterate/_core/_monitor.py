"""What a run tells the outside while it runs, and the thread that tells it on its intervals.

The monitor thread lives off the event loop on purpose: checkpoint writes and progress reports may
block (a state store round-trip, a log handler), and must never stall the items.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from ._checkpoint import Checkpoint
from ._options import RunOptions
from ._retrylog import RetryLog
from ._stats import RunStatistics

__all__ = ["Monitor", "RunObserver"]


class RunObserver(Protocol):
    """Receives a run's progress and warnings; called from the monitor threads, and per item only
    for the first few retries of a run."""

    def progress(self, stats: RunStatistics) -> None:
        """Every ``progress_interval`` seconds while the run goes on."""

    def monitor_error(self, what: str, exc: BaseException) -> None:
        """A progress report or checkpoint write failed; the run goes on."""

    def loop_blocked(self, seconds: float, where: str) -> None:
        """Something held the event loop for ``seconds`` at ``where`` (async runs only)."""

    def retry_note(self, note: str) -> None:
        """A line about item retries: one per retry (and per permanent error not retried) for the
        first few of a run, from the item's thread; then one summary per ``progress_interval``,
        from the monitor thread, and one at the end of the run."""


class Monitor:
    def __init__(
        self,
        statistics: Callable[[], RunStatistics],
        options: RunOptions,
        *,
        checkpoint: Checkpoint | None,
        observer: RunObserver | None,
        retry_log: RetryLog | None = None,
        write_ledger: Callable[[str], None] | None = None,
    ) -> None:
        self._statistics = statistics
        self._write_ledger = write_ledger
        self._options = options
        self._checkpoint = checkpoint
        self._observer = observer
        self._retry_log = retry_log
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._observer is None and self._checkpoint is None and self._write_ledger is None:
            return
        self._thread = threading.Thread(target=self._loop, name="iterate-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        observer, checkpoint = self._observer, self._checkpoint
        progress_interval = self._options.progress_interval
        flush_interval = self._options.checkpoint_interval
        now = time.monotonic()
        reporting = observer is not None or self._write_ledger is not None
        next_progress = now + progress_interval if reporting else float("inf")
        next_flush = now + flush_interval if checkpoint is not None else float("inf")
        while not self._stopped.wait(max(0.0, min(next_progress, next_flush) - time.monotonic())):
            now = time.monotonic()
            if now >= next_progress:
                next_progress = now + progress_interval
                if observer is not None:
                    try:
                        observer.progress(self._statistics())
                    except Exception as exc:
                        observer.monitor_error("progress report", exc)
                if self._write_ledger is not None:
                    self._write_ledger("running")  # reports its own errors
                if self._retry_log is not None:
                    self._retry_log.summarize()  # at most one line per interval; never raises
            if now >= next_flush and checkpoint is not None:
                next_flush = now + flush_interval
                try:
                    checkpoint.flush()
                except Exception as exc:  # the run goes on; only resumability suffers
                    if observer is not None:
                        observer.monitor_error("checkpoint write", exc)
