"""A background thread that reports progress and flushes checkpoints on their intervals.

It lives off the event loop on purpose: checkpoint writes and progress callbacks may block (a
state store round-trip, a log handler), and must never stall the items.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._checkpoint import Checkpoint
from ._stats import RunStatistics

__all__ = ["Monitor"]


class Monitor:
    def __init__(
        self,
        statistics: Callable[[], RunStatistics],
        *,
        on_progress: Callable[[RunStatistics], None] | None,
        progress_interval: float,
        checkpoint: Checkpoint | None,
        flush_interval: float,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self._statistics = statistics
        self._on_progress = on_progress
        self._progress_interval = progress_interval
        self._checkpoint = checkpoint
        self._flush_interval = flush_interval
        self._on_error = on_error
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._on_progress is None and self._checkpoint is None:
            return
        self._thread = threading.Thread(target=self._loop, name="iterate-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        now = time.monotonic()
        next_progress = now + self._progress_interval if self._on_progress else float("inf")
        next_flush = now + self._flush_interval if self._checkpoint else float("inf")
        while not self._stopped.wait(max(0.0, min(next_progress, next_flush) - time.monotonic())):
            now = time.monotonic()
            if now >= next_progress and self._on_progress is not None:
                next_progress = now + self._progress_interval
                try:
                    self._on_progress(self._statistics())
                except Exception as exc:
                    self._on_error("progress report", exc)
            if now >= next_flush and self._checkpoint is not None:
                next_flush = now + self._flush_interval
                try:
                    self._checkpoint.flush()
                except Exception as exc:  # the run goes on; only resumability suffers
                    self._on_error("checkpoint write", exc)
