"""Repeated wall-clock timing; the best repetition is the headline, the median shows the spread."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Wall times of the repetitions of one case, each over ``items`` items."""

    items: int
    seconds: Sequence[float]

    @property
    def best_us(self) -> float:
        return min(self.seconds) / self.items * 1e6

    @property
    def median_us(self) -> float:
        return statistics.median(self.seconds) / self.items * 1e6


def time_interleaved(cases: dict[str, tuple[int, Callable[[], int]]], repeats: int) -> dict[str, Timing]:
    """Time every case ``repeats`` times, round-robin.

    Round-robin rather than case after case so that a slow spell of the machine (another
    process, frequency scaling) hits all cases alike instead of skewing one ratio. Each case runs
    once untimed first, to pay one-off costs (imports, first event loop) outside the measurement.
    A case returns how many results it produced, which is checked, so a broken case cannot look
    fast.
    """
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for name, (items, run) in cases.items():
        _check(name, items, run())
    for _ in range(repeats):
        for name, (items, run) in cases.items():
            # Collect the previous case's garbage now, not inside this case's timing; the
            # collector stays on during the run because real runs pay for it too.
            gc.collect()
            start = time.perf_counter()
            produced = run()
            seconds[name].append(time.perf_counter() - start)
            _check(name, items, produced)
    return {name: Timing(cases[name][0], tuple(values)) for name, values in seconds.items()}


def _check(name: str, expected: int, produced: int) -> None:
    if produced != expected:
        raise RuntimeError(f"benchmark case {name!r} produced {produced} results, expected {expected}")
