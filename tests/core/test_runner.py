"""The Airflow-free engine: ordering, the concurrency bound, memory, errors, deadlines."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_iterate._core import (
    DEFAULT_ASYNC_CONCURRENCY,
    DEFAULT_SYNC_CONCURRENCY,
    Checkpoint,
    DirectoryStateStore,
    ItemRunner,
    ItemsFailedError,
    IterateCancelledError,
    IterateTimeoutError,
    IterateUsageError,
    RunOptions,
    input_digest,
)
from airflow_iterate._core._lag import LoopLagMonitor
from tests.core._observer import RecordingObserver

# -- ordering ----------------------------------------------------------------------------------


def test_async_results_are_in_input_order_when_items_finish_out_of_order() -> None:
    rng = random.Random(7)
    delays = [rng.random() / 200 for _ in range(300)]

    async def call(index: int, item: int) -> int:
        await asyncio.sleep(delays[index])  # simulated I/O with shuffled completion order
        return item * 2

    assert ItemRunner(call, RunOptions(concurrency=16), is_async=True).run(range(300)) == [
        i * 2 for i in range(300)
    ]


def test_sync_results_are_in_input_order_when_items_finish_out_of_order() -> None:
    gate = threading.Barrier(4, timeout=10)

    def call(index: int, item: str) -> str:
        if index < 4:
            gate.wait()  # the first four run together, then finish in reverse order
            for _ in range(4 - index):
                threading.Event().wait(0.001)
        return item.upper()

    items = [f"f{i}" for i in range(50)]
    assert ItemRunner(call, RunOptions(concurrency=4), is_async=False).run(items) == [
        s.upper() for s in items
    ]


# -- the concurrency bound ----------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3, 32])
def test_async_concurrency_bound_is_reached_and_never_exceeded(concurrency: int) -> None:
    live = 0
    peak = 0

    async def call(index: int, item: int) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        for _ in range(3):
            await asyncio.sleep(0)
        live -= 1

    runner: ItemRunner[int, None] = ItemRunner(call, RunOptions(concurrency=concurrency), is_async=True)
    runner.run(range(500))
    assert peak == concurrency
    stats = runner.statistics()
    assert stats.peak_in_flight == concurrency
    assert (stats.started, stats.succeeded, stats.failed, stats.in_flight) == (500, 500, 0, 0)


def test_thread_concurrency_bound_is_reached_and_never_exceeded() -> None:
    concurrency = 6
    lock = threading.Lock()
    live = 0
    peak = 0
    everyone_in = threading.Barrier(concurrency, timeout=10)

    def call(index: int, item: int) -> int:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)
        if index < concurrency:
            everyone_in.wait()  # proves `concurrency` items really run at the same time
        with lock:
            live -= 1
        return item

    assert ItemRunner(call, RunOptions(concurrency=concurrency), is_async=False).run(range(200)) == list(
        range(200)
    )
    assert peak == concurrency


# -- bounded in-flight work and memory --------------------------------------------------------


def test_lazy_input_is_pulled_only_as_fast_as_items_complete() -> None:
    concurrency = 8
    pulled = 0
    completed = 0
    worst_gap = 0

    def source() -> Iterator[int]:
        nonlocal pulled, worst_gap
        for i in range(20_000):
            pulled += 1
            worst_gap = max(worst_gap, pulled - completed)
            yield i

    async def call(index: int, item: int) -> None:
        nonlocal completed
        await asyncio.sleep(0)
        completed += 1

    ItemRunner(call, RunOptions(concurrency=concurrency), is_async=True).run(source())
    assert completed == 20_000
    assert worst_gap <= concurrency


def test_memory_grows_with_results_not_with_pending_work() -> None:
    n = 200_000

    async def call(index: int, item: int) -> None:
        return None

    tracemalloc.start()
    try:
        ItemRunner(call, RunOptions(concurrency=32), is_async=True).run(iter(range(n)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The result list costs 8 bytes a slot (plus growth slack); one coroutine or future per item
    # created up front would cost hundreds of bytes each (~100 MB here).
    assert peak < n * 8 * 2 + 2_000_000, peak


# -- errors ------------------------------------------------------------------------------------


def test_failure_names_the_item_and_lets_in_flight_items_finish() -> None:
    finished: set[int] = set()
    release = asyncio.Event()

    async def call(index: int, item: str) -> str:
        if item == "bad.xml":
            release.set()
            raise FileNotFoundError("no such file: bad.xml")
        if index < 3:
            await release.wait()  # these are in flight when the failure happens
        finished.add(index)
        return item

    items = ["a.xml", "b.xml", "c.xml", "bad.xml"] + [f"later{i}.xml" for i in range(100)]
    runner: ItemRunner[str, str] = ItemRunner(call, RunOptions(concurrency=4), is_async=True)
    with pytest.raises(ItemsFailedError) as info:
        runner.run(items)
    err = info.value
    assert [f.index for f in err.failures] == [3]
    assert "item 3" in str(err) and "'bad.xml'" in str(err) and "FileNotFoundError" in str(err)
    assert isinstance(err.__cause__, FileNotFoundError)
    assert {0, 1, 2} <= finished  # in-flight items completed
    assert len(finished) < 50  # no flood of new items after the failure
    assert err.completed == len(finished)


def test_sync_failure_is_reported_with_index_and_repr() -> None:
    def call(index: int, item: dict[str, int]) -> int:
        return 10 // item["d"]

    with pytest.raises(ItemsFailedError) as info:
        ItemRunner(call, RunOptions(concurrency=2), is_async=False).run([{"d": 1}, {"d": 0}, {"d": 2}])
    assert "item 1 (input {'d': 0})" in str(info.value)
    assert isinstance(info.value.failures[0].exception, ZeroDivisionError)


def test_huge_input_reprs_are_shortened_in_errors() -> None:
    async def call(index: int, item: str) -> None:
        raise ValueError("boom")

    with pytest.raises(ItemsFailedError) as info:
        ItemRunner(call, RunOptions(concurrency=1), is_async=True).run(["x" * 10_000])
    assert len(str(info.value)) < 300


def test_broken_input_stream_raises_its_error_after_in_flight_items_finish() -> None:
    done: list[int] = []

    def source() -> Iterator[int]:
        yield 0
        yield 1
        raise OSError("stream broke")

    async def call(index: int, item: int) -> int:
        await asyncio.sleep(0)
        done.append(item)
        return item

    with pytest.raises(OSError, match="stream broke"):
        ItemRunner(call, RunOptions(concurrency=4), is_async=True).run(source())
    assert sorted(done) == [0, 1]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "8", True])
def test_bad_concurrency_is_refused(bad: object) -> None:
    with pytest.raises(IterateUsageError, match="concurrency"):
        ItemRunner(lambda i, x: x, RunOptions(concurrency=bad), is_async=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("is_async", "default"), [(True, DEFAULT_ASYNC_CONCURRENCY), (False, DEFAULT_SYNC_CONCURRENCY)]
)
def test_no_concurrency_means_the_engine_default(is_async: bool, default: int) -> None:
    runner: ItemRunner[int, int] = ItemRunner(lambda i, x: x, RunOptions(concurrency=None), is_async=is_async)
    assert runner.statistics().concurrency == default


def test_a_runner_runs_once() -> None:
    runner: ItemRunner[int, int] = ItemRunner(lambda i, x: x, RunOptions(concurrency=1), is_async=False)
    assert runner.run([1]) == [1]
    with pytest.raises(IterateUsageError, match="runs once"):
        runner.run([1])


# -- deadlines ---------------------------------------------------------------------------------


def test_async_timeout_cancels_in_flight_items_and_runs_their_cleanup() -> None:
    cleaned: list[int] = []

    async def call(index: int, item: int) -> int:
        if index < 5:
            return item
        try:
            await asyncio.Event().wait()  # never completes
        finally:
            cleaned.append(index)
        return item  # pragma: no cover

    runner: ItemRunner[int, int] = ItemRunner(call, RunOptions(concurrency=3, timeout=0.3), is_async=True)
    with pytest.raises(IterateTimeoutError) as info:
        runner.run(range(100))
    assert info.value.completed == 5
    assert info.value.cancelled == 3
    assert sorted(cleaned) == [5, 6, 7]


def test_thread_timeout_stops_new_items_and_reports_progress() -> None:
    release = threading.Event()
    started: list[int] = []

    def call(index: int, item: int) -> int:
        started.append(index)
        if index >= 2:
            release.wait(5)
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=2, timeout=0.3, cleanup_timeout=0.1), is_async=False
    )
    with pytest.raises(IterateTimeoutError) as info:
        runner.run(range(100))
    release.set()
    assert info.value.completed == 2
    assert len(started) == 4


# -- running inside an existing loop, context propagation ---------------------------------------


def test_arun_shares_the_callers_event_loop() -> None:
    loops: set[int] = set()

    async def call(index: int, item: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return item + 1

    async def main() -> list[int]:
        loops.add(id(asyncio.get_running_loop()))
        return await ItemRunner(call, RunOptions(concurrency=5), is_async=True).arun(range(20))

    assert asyncio.run(main()) == list(range(1, 21))
    assert len(loops) == 1


def test_threads_see_the_callers_context_variables() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    var.set("from-caller")
    seen = ItemRunner(lambda i, x: var.get("missing"), RunOptions(concurrency=3), is_async=False).run(
        range(6)
    )
    assert seen == ["from-caller"] * 6


def test_empty_input_gives_an_empty_result() -> None:
    async def call(index: int, item: int) -> int:
        return item

    assert ItemRunner(call, RunOptions(concurrency=4), is_async=True).run([]) == []
    assert ItemRunner(lambda i, x: x, RunOptions(concurrency=4), is_async=False).run([]) == []


# -- cancellation ------------------------------------------------------------------------------


def test_cancel_from_another_thread_runs_async_cleanup_and_reports_counts() -> None:
    cleaned: list[int] = []
    started = threading.Event()
    runner: ItemRunner[int, int]

    async def call(index: int, item: int) -> int:
        if index < 10:
            return item
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(index)
        return item  # pragma: no cover

    runner = ItemRunner(call, RunOptions(concurrency=4), is_async=True)
    canceller = threading.Thread(target=lambda: started.wait(10) and runner.cancel("the task was killed"))
    canceller.start()
    with pytest.raises(IterateCancelledError) as info:
        runner.run(range(100))
    canceller.join()
    assert info.value.completed == 10 and info.value.cancelled == 4
    assert sorted(cleaned) == [10, 11, 12, 13]
    assert "the task was killed" in str(info.value)


def test_cancel_stops_a_threaded_run_after_in_flight_items_finish() -> None:
    release = threading.Event()
    started = threading.Event()
    runner: ItemRunner[int, int]

    def call(index: int, item: int) -> int:
        if index >= 2:
            started.set()
            release.wait(10)
        return item

    runner = ItemRunner(call, RunOptions(concurrency=2), is_async=False)

    def cancel_then_release() -> None:
        started.wait(10)
        runner.cancel("stop")
        release.set()

    threading.Thread(target=cancel_then_release).start()
    with pytest.raises(IterateCancelledError):
        runner.run(range(100))
    assert runner.statistics().started <= 4


def test_a_blocking_call_on_the_event_loop_is_reported_with_its_location() -> None:
    observer = RecordingObserver()

    async def call(index: int, item: int) -> int:
        if index == 3:
            time.sleep(0.3)  # the mistake: a blocking call inside an async item
        await asyncio.sleep(0)
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        call, RunOptions(concurrency=4), is_async=True, observer=observer
    )
    assert runner.run(range(10)) == list(range(10))
    assert len(observer.blocks) == 1
    seconds, where = observer.blocks[0]
    assert seconds >= 0.1
    assert "test_runner.py" in where and "in call" in where


def test_a_block_that_ends_the_run_is_still_reported() -> None:
    """The loop blocks, then the monitor is stopped before the loop ever answers its ping."""
    blocks: list[tuple[float, str]] = []

    async def main() -> None:
        monitor = LoopLagMonitor(
            asyncio.get_running_loop(),
            threading.get_ident(),
            lambda seconds, where: blocks.append((seconds, where)),
            threshold=0.1,
            interval=0.01,
        )
        monitor.start()
        await asyncio.sleep(0.05)  # answered pings: no block yet
        assert blocks == []
        time.sleep(0.3)  # blocks the loop, which answers nothing until this step ends
        monitor.stop()  # ...and the run ends here, as a run whose last item blocked does

    asyncio.run(main())
    assert len(blocks) == 1
    seconds, where = blocks[0]
    assert seconds >= 0.1
    assert "test_runner.py" in where and "in main" in where


# -- a part of a larger input ------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [True, False])
def test_index_offset_names_items_by_their_place_in_the_whole_input(is_async: bool, tmp_path: Path) -> None:
    items = ["a", "b", "c", "d", "e", "f"]
    calls: list[tuple[int, str]] = []
    broken = {"f"}

    def body(position: int, item: str) -> str:
        calls.append((position, item))
        if item in broken:
            raise OSError(f"lost {item}")
        return item.upper()

    async def acall(position: int, item: str) -> str:
        await asyncio.sleep(0)
        return body(position, item)

    call: Any = acall if is_async else body
    store = DirectoryStateStore(tmp_path)

    first: ItemRunner[str, str] = ItemRunner(
        call,
        RunOptions(concurrency=2, max_failures=0),
        is_async=is_async,
        index_offset=100,
        checkpoint=Checkpoint(store, "part"),
    )
    with pytest.raises(ItemsFailedError) as info:
        first.run(items)
    assert sorted(calls) == [(100 + i, item) for i, item in enumerate(items)]
    assert [f.index for f in first.failures] == [105]
    assert [f.index for f in info.value.failures] == [105]
    assert "item 105" in str(info.value)
    # the failed run kept what succeeded, under the positions in the whole input
    assert Checkpoint(store, "part").load() == {
        100 + i: (input_digest(item), item.upper()) for i, item in enumerate(items[:5])
    }

    broken.clear()
    calls.clear()
    second: ItemRunner[str, str] = ItemRunner(
        call,
        RunOptions(concurrency=2),
        is_async=is_async,
        index_offset=100,
        checkpoint=Checkpoint(store, "part"),
    )
    # only this run's results, in input order: resumed ones from the checkpoint, the rest new
    assert second.run(items) == ["A", "B", "C", "D", "E", "F"]
    assert calls == [(105, "f")]
    assert second.statistics().resumed == 5
    assert second.failures == []
