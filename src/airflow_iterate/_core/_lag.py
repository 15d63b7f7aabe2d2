"""Noticing when something blocks the event loop, and where.

A thread pings the loop every ``interval``; a ping not answered within ``threshold`` means one
step is hogging the loop (and every other item waits). While it is still blocked, the loop
thread's stack is sampled to name the line responsible; once the loop answers, ``on_block`` gets
the duration and that location. The cost is one callback per interval, far less than asyncio's
debug mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["LoopLagMonitor"]

# Frames from these places are machinery, not the code that blocks.
_SKIP = (
    os.path.dirname(asyncio.__file__),
    os.path.dirname(threading.__file__) + os.sep + "threading.py",
    os.path.dirname(os.path.abspath(__file__)),
)


def _blocking_location(thread_id: int) -> str:
    # Walking outwards from where the thread is now, the first frame outside the machinery is
    # the code that holds the loop.
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(_SKIP):
            return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return "unknown location"


def _answer(answered_at: list[float], answered: threading.Event) -> None:
    answered_at.append(time.monotonic())
    answered.set()


class LoopLagMonitor:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        loop_thread_id: int,
        on_block: Callable[[float, str], None],
        *,
        threshold: float = 0.1,
        interval: float = 0.05,
    ) -> None:
        self._loop = loop
        self._loop_thread_id = loop_thread_id
        self._on_block = on_block
        self._threshold = threshold
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="iterate-loop-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stopped.wait(self._interval):
            answered = threading.Event()
            answered_at: list[float] = []
            sent = time.monotonic()
            try:
                self._loop.call_soon_threadsafe(_answer, answered_at, answered)
            except RuntimeError:  # the loop closed
                return
            if answered.wait(self._threshold):
                continue
            where = _blocking_location(self._loop_thread_id)
            # A run that ends right after the block stops the monitor at once: the block still
            # happened and is reported, with its length up to the answer (or the stop).
            while not answered.wait(0.05) and not self._stopped.is_set():
                pass
            with contextlib.suppress(Exception):  # reporting must never take the monitor down
                self._on_block((answered_at[0] if answered_at else time.monotonic()) - sent, where)
