"""Values that would hang, overflow or exhaust a run are refused; failures and checkpoints stay safe."""

from __future__ import annotations

import asyncio
import gc
import math
import stat
import threading
import weakref
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_iterate._core import (
    DirectoryStateStore,
    ItemRunner,
    IterateUsageError,
    RateLimit,
    RunOptions,
    parse_rate_limit,
)


class Payload:
    """A large local of a failing item (a downloaded file, a parsed page)."""

    def __init__(self) -> None:
        self.data = bytearray(1024)


@pytest.mark.parametrize("is_async", [True, False])
def test_tolerated_failures_do_not_keep_the_items_locals_alive(is_async: bool) -> None:
    payloads: list[weakref.ref[Payload]] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        payload = Payload()
        with lock:
            payloads.append(weakref.ref(payload))
        raise ValueError(f"item {index} failed with {len(payload.data)} bytes in hand")

    async def async_call(index: int, item: int) -> None:
        await asyncio.sleep(0)
        work(index)

    def sync_call(index: int, item: int) -> None:
        work(index)

    call = async_call if is_async else sync_call
    runner: ItemRunner[int, None] = ItemRunner(
        call, RunOptions(concurrency=4, max_failures=None), is_async=is_async
    )
    assert runner.run(range(50)) == [None] * 50
    gc.collect()
    assert len(runner.failures) == 50
    assert [ref() for ref in payloads] == [None] * 50
    # The failures still say what happened, and where.
    assert runner.failures[0].error == "ValueError: item 0 failed with 1024 bytes in hand"
    assert runner.failures[0].exception.__traceback__ is not None


@pytest.mark.parametrize(
    "options",
    [
        {"checkpoint_interval": math.nan},
        {"progress_interval": float("nan")},
        {"item_retry_delay": math.nan},
        {"checkpoint_interval": 0},
        {"timeout": timedelta(seconds=-1)},
        {"concurrency": 10**9},
        {"rate_limit": 1e-320},
        {"rate_limit": math.inf},
        {"rate_limit": math.nan},
        {"rate_limit": 0.5e-5},
    ],
    ids=repr,
)
def test_values_that_would_hang_or_exhaust_a_run_are_refused(options: dict[str, Any]) -> None:
    name = next(iter(options))
    with pytest.raises(IterateUsageError, match="rate.limit" if name == "rate_limit" else name):
        RunOptions(**options)


def test_a_rate_limit_is_checked_however_it_is_built() -> None:
    with pytest.raises(IterateUsageError, match="at least one item a day"):
        RateLimit(0)
    with pytest.raises(IterateUsageError, match="burst"):
        RateLimit(5, burst=0)
    assert parse_rate_limit("1/h").per_second == pytest.approx(1 / 3600)


def test_thousands_of_retries_back_off_at_the_cap_instead_of_overflowing() -> None:
    options = RunOptions(item_retries=5000, item_retry_delay=1.0, item_retry_max_delay=30.0)
    assert 15.0 <= options.backoff(2000) <= 30.0


def test_a_huge_concurrency_over_a_small_input_starts_one_worker_per_item() -> None:
    workers: list[int] = []

    def call(index: int, item: int) -> int:
        workers.append(sum(t.name.startswith("iterate-worker") for t in threading.enumerate()))
        return item

    runner: ItemRunner[int, int] = ItemRunner(call, RunOptions(concurrency=500), is_async=False)
    assert runner.run([1, 2, 3]) == [1, 2, 3]
    assert max(workers) <= 3


def test_directory_checkpoints_never_share_a_file_and_are_the_owners_only(tmp_path: Path) -> None:
    store = DirectoryStateStore(tmp_path / "checkpoints")
    # Keys that a readable file name would have mapped to one file.
    pairs = {
        "airflow_iterate/sales/daily_2024/t/-1/0": "run A",
        "airflow_iterate/sales_daily/2024/t/-1/0": "run B",
        "airflow_iterate/d/backfill:1/t/-1/0": "run C",
        "airflow_iterate/d/backfill+1/t/-1/0": "run D",
    }
    for key, value in pairs.items():
        store.set(key, value)
    assert {key: store.get(key) for key in pairs} == pairs
    files = list((tmp_path / "checkpoints").iterdir())
    assert len(files) == 4
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE((tmp_path / "checkpoints").stat().st_mode) == 0o700
    store.delete("airflow_iterate/sales/daily_2024/t/-1/0")
    assert store.get("airflow_iterate/sales/daily_2024/t/-1/0") is None
    assert store.get("airflow_iterate/sales_daily/2024/t/-1/0") == "run B"
