"""The options of iterate()/iterate_kwargs(), checked at DAG-parse time and kept on the operator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .._core import IterateUsageError, RunOptions

# Async items mostly wait on the network: at two round trips of 20 ms per item, 128 in flight
# allow ~3,000 items/s, about what one event loop's CPU can drive; 32 capped a download task at
# a quarter of that. What a remote server sees is bounded by its client (SFTPPool: 4 connections
# x 32 borrowers; httpx and aiohttp: 100 connections), which also queues what exceeds it.
DEFAULT_ASYNC_CONCURRENCY = 128
DEFAULT_SYNC_CONCURRENCY = 8
DEFAULT_MAX_ITEMS = 1_000_000

Seconds = float | timedelta


@dataclass(frozen=True)
class IterateSettings:
    """Keyword-only options of ``iterate()`` / ``iterate_kwargs()`` (see the README for each)."""

    concurrency: int | None = None
    item_retries: int = 0
    item_retry_delay: Seconds = 1.0
    item_retry_max_delay: Seconds = 300.0
    item_retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception
    max_failures: int | float | None = 0
    checkpoint: bool = True
    checkpoint_interval: Seconds = 5.0
    progress_interval: Seconds = 10.0
    rate_limit: str | float | None = None
    max_items: int | None = DEFAULT_MAX_ITEMS
    chunk_size: int | None = None
    chunks: int | None = None

    def __post_init__(self) -> None:
        for name in ("chunk_size", "chunks"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise IterateUsageError(f"{name} must be a positive int or None, got {value!r}")
        if self.chunk_size is not None and self.chunks is not None:
            raise IterateUsageError(
                "pass chunk_size (items per task instance) or chunks (number of task instances), not both"
            )
        if not isinstance(self.checkpoint, bool):
            raise IterateUsageError(f"checkpoint must be True or False, got {self.checkpoint!r}")
        for name in ("checkpoint_interval", "progress_interval"):
            value = _seconds(getattr(self, name))
            if value is None or value <= 0:
                raise IterateUsageError(f"{name} must be a positive number of seconds or a timedelta")
        concurrency = 1 if self.concurrency is None else self.concurrency
        self.run_options(concurrency=concurrency, timeout=None, stop_on=())  # validates the rest

    def run_options(
        self, *, concurrency: int, timeout: float | None, stop_on: tuple[type[BaseException], ...]
    ) -> RunOptions:
        return RunOptions(
            concurrency=concurrency,
            timeout=timeout,
            retries=self.item_retries,
            retry_delay=self.item_retry_delay,  # type: ignore[arg-type]  # RunOptions converts
            retry_max_delay=self.item_retry_max_delay,  # type: ignore[arg-type]
            retry_on=self.item_retry_on,  # type: ignore[arg-type]
            stop_on=stop_on,
            max_failures=self.max_failures,
            rate_limit=self.rate_limit,  # type: ignore[arg-type]
            max_items=self.max_items,
        )

    @property
    def chunked(self) -> bool:
        return self.chunk_size is not None or self.chunks is not None

    def seconds(self, name: str) -> float:
        value = _seconds(getattr(self, name))
        assert value is not None
        return value

    def default_concurrency(self, is_async: bool) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return DEFAULT_ASYNC_CONCURRENCY if is_async else DEFAULT_SYNC_CONCURRENCY


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(IterateSettings))


def _seconds(value: Any) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
