"""Sizes and cases of one benchmark run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    #: cases (a) to (c): async no-op items in one task instance
    items: int
    #: case (d): items that each await ``slow_sleep`` seconds, ``slow_concurrency`` at a time, so
    #: that the run lasts several progress intervals
    slow_items: int
    slow_sleep: float
    slow_concurrency: int
    #: case (e): mapped task instances of ``.expand()``
    expand_items: int


# Case (d) lasts at least items * sleep / concurrency: about 8 s full, 3 s quick, so that the
# periodic writes outnumber the ones at the start and the end of the run.
FULL = Sizes(items=100_000, slow_items=20_000, slow_sleep=0.05, slow_concurrency=128, expand_items=1_000)
QUICK = Sizes(items=10_000, slow_items=2_000, slow_sleep=0.05, slow_concurrency=32, expand_items=100)

#: case (d)'s intervals, in seconds
SLOW_PROGRESS_INTERVAL = 1.0
SLOW_CHECKPOINT_INTERVAL = 1.0
