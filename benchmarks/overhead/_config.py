"""Sizes of one benchmark run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    async_items: int
    sync_items: int
    repeats: int
    dag_repeats: int
    expand_tis: int
    expand_repeats: int
    memory_items: int


# Item counts are large enough that the fixed cost of a run (event loop, thread start-up) is well
# under 1% of the per-item total, so wall / N is the per-item cost.
FULL = Sizes(
    async_items=100_000,
    sync_items=50_000,
    repeats=5,
    dag_repeats=3,
    expand_tis=200,
    expand_repeats=2,
    memory_items=1_000_000,
)

QUICK = Sizes(
    async_items=20_000,
    sync_items=10_000,
    repeats=3,
    dag_repeats=2,
    expand_tis=50,
    expand_repeats=1,
    memory_items=200_000,
)

ASYNC_CONCURRENCY = 32
SYNC_THREADS = 8
