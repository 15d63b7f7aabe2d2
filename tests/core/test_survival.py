"""Per-item retries, failure tolerance, rate limits, max_items, checkpoints and progress."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest

from airflow_iterate._core import (
    Checkpoint,
    DirectoryStateStore,
    ItemRunner,
    ItemsFailedError,
    IterateInputError,
    IterateUsageError,
    RunOptions,
    RunStatistics,
    input_digest,
    parse_rate_limit,
)
from tests.core._observer import RecordingObserver


class MemoryStore:
    """An in-memory state store that counts its writes (a real store in every other respect)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sets = 0
        self.deletes = 0

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.sets += 1
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.deletes += 1
        self.data.pop(key, None)


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [True, False])
def test_flaky_items_succeed_on_a_later_attempt(is_async: bool) -> None:
    attempts: Counter[int] = Counter()

    def body(item: int) -> int:
        attempts[item] += 1
        if attempts[item] <= item % 3:  # item 1 fails once, item 2 fails twice
            raise ConnectionResetError(f"flaky {item}")
        return item * 10

    async def acall(index: int, item: int) -> int:
        return body(item)

    call: Any = acall if is_async else (lambda index, item: body(item))
    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=4, item_retries=2, item_retry_delay=0.001), is_async=is_async
    )
    assert runner.run(range(30)) == [i * 10 for i in range(30)]
    assert runner.statistics().retried == sum(i % 3 for i in range(30))
    assert max(attempts.values()) == 3


def test_without_enough_retries_the_item_fails_with_its_last_error() -> None:
    async def call(index: int, item: int) -> int:
        raise TimeoutError(f"attempt failed for {item}")

    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=1, item_retries=2, item_retry_delay=0), is_async=True
    )
    with pytest.raises(ItemsFailedError, match=r"item 0 .*TimeoutError"):
        runner.run([5])
    assert runner.statistics().retried == 2


def test_only_listed_exceptions_are_retried() -> None:
    calls = Counter[str]()

    async def call(index: int, item: str) -> str:
        calls[item] += 1
        raise (ConnectionError if item == "net" else KeyError)(item)

    runner: ItemRunner[str, str] = ItemRunner(
        call,
        RunOptions(
            concurrency=2,
            item_retries=3,
            item_retry_delay=0,
            item_retry_on=(ConnectionError,),
            max_failures=None,
        ),
        is_async=True,
    )
    assert runner.run(["net", "bug"]) == [None, None]
    assert calls == {"net": 4, "bug": 1}


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    options = RunOptions(concurrency=1, item_retry_delay=1.0, item_retry_max_delay=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        delays = {options.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_stop_on_exceptions_are_not_retried_and_stop_the_run() -> None:
    class Fatal(Exception):
        pass

    started: list[int] = []

    async def call(index: int, item: int) -> int:
        started.append(item)
        await asyncio.sleep(0)
        if item == 3:
            raise Fatal("give up")
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=2, item_retries=5, stop_on=(Fatal,), max_failures=None), is_async=True
    )
    with pytest.raises(Fatal, match="give up"):
        runner.run(range(1000))
    assert started.count(3) == 1
    assert len(started) < 10


# -- failure tolerance -------------------------------------------------------------------------


def _fail_on(bad: set[int]) -> Any:
    async def call(index: int, item: int) -> int:
        if item in bad:
            raise ValueError(f"bad {item}")
        return item

    return call


def test_failures_within_the_count_limit_are_reported_not_raised() -> None:
    runner: ItemRunner[int, int] = ItemRunner(
        _fail_on({2, 5}), RunOptions(concurrency=3, max_failures=2), is_async=True
    )
    assert runner.run(range(8)) == [0, 1, None, 3, 4, None, 6, 7]
    assert [(f.index, f.input_repr, str(f.exception)) for f in runner.failures] == [
        (2, "2", "bad 2"),
        (5, "5", "bad 5"),
    ]


def test_one_failure_over_the_count_limit_fails_the_run_naming_the_first_failures() -> None:
    with pytest.raises(ItemsFailedError) as info:
        ItemRunner(_fail_on({1, 2, 3}), RunOptions(concurrency=1, max_failures=2), is_async=True).run(
            range(8)
        )
    assert [f.index for f in info.value.failures] == [1, 2, 3]
    assert str(info.value).startswith("3 item(s) of 8 failed")


@pytest.mark.parametrize(("ratio", "fails"), [(0.25, False), (0.2, True)])
def test_ratio_limit_on_both_sides(ratio: float, fails: bool) -> None:
    runner: ItemRunner[int, int] = ItemRunner(
        _fail_on({0, 4}), RunOptions(concurrency=2, max_failures=ratio), is_async=True
    )
    if fails:  # 2 of 8 failed: 25% > 20%
        with pytest.raises(ItemsFailedError):
            runner.run(list(range(8)))
    else:
        assert runner.run(list(range(8))) == [None, 1, 2, 3, None, 5, 6, 7]


def test_ratio_limit_of_a_stream_of_unknown_length_is_checked_at_the_end() -> None:
    runner: ItemRunner[int, int] = ItemRunner(
        _fail_on({0}), RunOptions(concurrency=2, max_failures=0.5), is_async=True
    )
    assert runner.run(iter(range(4))) == [None, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_failures": -1}, "max_failures must be at least 0"),
        ({"max_failures": 1.5}, r"ratio must be in \(0, 1\)"),
        ({"max_failures": "3"}, "max_failures must be"),
        ({"item_retries": -1}, "item_retries must be at least 0"),
        ({"item_retry_delay": "soon"}, "item_retry_delay must be a number of seconds"),
        ({"item_retry_on": (ValueError, "x")}, "item_retry_on must be an exception class"),
        ({"rate_limit": "fast"}, "rate_limit must look like"),
        ({"max_items": 0}, "max_items must be at least 1"),
    ],
)
def test_bad_options_are_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(IterateUsageError, match=message):
        RunOptions(concurrency=1, **kwargs)


# -- rate limit, max_items -------------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [True, False])
def test_rate_limit_is_never_exceeded(is_async: bool) -> None:
    starts: list[float] = []
    lock = threading.Lock()

    def record() -> None:
        with lock:
            starts.append(time.monotonic())

    async def acall(index: int, item: int) -> None:
        record()

    call: Any = acall if is_async else (lambda index, item: record())
    ItemRunner(call, RunOptions(concurrency=8, rate_limit="100/s", item_retries=1), is_async=is_async).run(
        range(40)
    )
    starts.sort()
    # the k-th start comes at least k / rate after the first, whatever the concurrency
    assert all(t - starts[0] >= k * 0.01 - 0.005 for k, t in enumerate(starts)), starts


def test_rate_limit_spellings() -> None:
    assert parse_rate_limit("200/s").per_second == 200
    assert parse_rate_limit("30/min").per_second == 0.5
    assert parse_rate_limit("7200/h").per_second == 2
    assert parse_rate_limit(5).per_second == 5


def test_max_items_refuses_a_sized_input_before_anything_runs() -> None:
    ran: list[int] = []
    with pytest.raises(IterateInputError, match="1,001 items, over max_items=1,000"):
        ItemRunner(lambda i, x: ran.append(x), RunOptions(concurrency=2, max_items=1000), is_async=False).run(
            range(1001)
        )
    assert ran == []


def test_max_items_stops_a_stream_that_runs_over() -> None:
    async def call(index: int, item: int) -> int:
        return item

    with pytest.raises(IterateInputError, match="more than 10 items"):
        ItemRunner(call, RunOptions(concurrency=2, max_items=10), is_async=True).run(iter(range(50)))


# -- checkpoints ----------------------------------------------------------------------------------


def test_a_rerun_resumes_only_the_items_that_did_not_succeed() -> None:
    store = MemoryStore()
    calls: Counter[int] = Counter()
    broken = {7, 13}

    async def call(index: int, item: int) -> dict[str, int]:
        calls[item] += 1
        if item in broken:
            raise OSError("server went away")
        return {"value": item * 3}

    first: ItemRunner[int, Any] = ItemRunner(
        call, RunOptions(concurrency=4, max_failures=0), is_async=True, checkpoint=Checkpoint(store, "t1")
    )
    with pytest.raises(ItemsFailedError):
        first.run(list(range(20)))
    done_first = first.statistics().succeeded
    assert store.data  # the failed run left a checkpoint

    broken.clear()  # the server is back
    second: ItemRunner[int, Any] = ItemRunner(
        call, RunOptions(concurrency=4), is_async=True, checkpoint=Checkpoint(store, "t1")
    )
    assert second.run(list(range(20))) == [{"value": i * 3} for i in range(20)]
    assert second.statistics().resumed == done_first
    assert all(calls[i] == 1 for i in range(20) if i not in (7, 13) and i < done_first)
    assert store.data == {}  # a successful run discards its checkpoint


def test_changed_input_runs_again_instead_of_reusing_a_stale_result() -> None:
    store = MemoryStore()
    first = Checkpoint(store, "t2")
    for index, item in enumerate(["a", "b", "c"]):
        first.record(index, item, item.upper())
    first.flush()

    checkpoint = Checkpoint(store, "t2")
    runner: ItemRunner[str, str] = ItemRunner(
        lambda i, x: x.upper() + "!", RunOptions(concurrency=1), is_async=False, checkpoint=checkpoint
    )
    assert runner.run(["a", "B-changed", "c"]) == ["A", "B-CHANGED!", "C"]
    assert runner.changed_inputs == 1


def test_checkpoint_writes_are_batched_for_20000_items() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store, "big")

    async def call(index: int, item: int) -> int:
        if item == 19_999:
            raise RuntimeError("last item fails, so the final flush keeps the checkpoint")
        await asyncio.sleep(0.001)  # spread the run over many flush intervals
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=32, checkpoint_interval=0.05), is_async=True, checkpoint=checkpoint
    )
    started = time.monotonic()
    with pytest.raises(ItemsFailedError):
        runner.run(range(20_000))
    elapsed = time.monotonic() - started
    # at most one flush per interval plus the final one, each a value or a few, never one per item
    assert 2 <= checkpoint.flushes <= elapsed / 0.05 + 2, (checkpoint.flushes, elapsed)
    assert store.sets <= 2 * checkpoint.flushes + 2
    assert store.sets < 100
    assert all(len(str(v)) < 65_000 for v in store.data.values())
    assert len(Checkpoint(store, "big").load()) == 19_999


def test_large_results_are_split_into_pieces_under_the_value_limit() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store, "large")
    blob = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(40_000))  # incompressible-ish
    for index in range(5):
        checkpoint.record(index, index, blob)
    checkpoint.flush()
    assert store.sets > 1
    assert all(len(str(v)) < 65_000 for v in store.data.values())
    assert Checkpoint(store, "large").load() == {i: (input_digest(i), blob) for i in range(5)}


def test_a_batch_cut_short_by_a_crash_is_ignored() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store, "cut")
    checkpoint.record(0, "a", 1)
    checkpoint.flush()
    checkpoint.PIECE_CHARS = 10  # force a multi-piece batch, then lose its last piece
    for index in range(1, 50):
        checkpoint.record(index, f"x{index}", index)
    checkpoint.flush()
    last = max(store.data, key=lambda k: int(k.rsplit("/", 1)[1]))
    del store.data[last]
    assert set(Checkpoint(store, "cut").load()) == {0}


def test_other_keys_in_the_store_are_never_touched() -> None:
    store = MemoryStore()
    store.data["job_id"] = "user-value"
    checkpoint = Checkpoint(store, "mine")
    checkpoint.record(0, 0, 0)
    checkpoint.flush()
    checkpoint.discard()
    assert store.data == {"job_id": "user-value"}


def test_directory_store_round_trip(tmp_path: Any) -> None:
    store = DirectoryStateStore(tmp_path / "state")
    checkpoint = Checkpoint(store, "dag/run/task")
    checkpoint.record(0, "in", {"out": [1, 2]})
    checkpoint.flush()
    assert Checkpoint(DirectoryStateStore(tmp_path / "state"), "dag/run/task").load()[0][1] == {"out": [1, 2]}


# -- progress ------------------------------------------------------------------------------------


def test_progress_is_reported_on_its_interval_while_items_run() -> None:
    two_reports = threading.Event()

    class Observer(RecordingObserver):
        def progress(self, stats: RunStatistics) -> None:
            super().progress(stats)
            if len(self.reports) >= 2:
                two_reports.set()

    observer = Observer()

    def call(index: int, item: int) -> int:
        if index == 0:
            assert two_reports.wait(10), "no progress reports while an item was running"
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=2, progress_interval=0.02), is_async=False, observer=observer
    )
    runner.run(range(100))
    reports = observer.reports
    assert reports[0].total == 100 and reports[0].in_flight >= 1
    assert "/ 100 done" in reports[0].describe()
