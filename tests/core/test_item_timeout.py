"""``item_timeout``: a hung attempt fails alone, is retried like any error, and never piles up threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest

from airflow_iterate._core import ItemRunner, ItemTimeoutError, RunOptions


def test_a_hung_async_item_is_cancelled_retried_and_tolerated_while_the_others_finish() -> None:
    attempts: Counter[int] = Counter()
    cleaned: list[int] = []

    async def body(position: int, item: int) -> int:
        attempts[item] += 1
        try:
            if item == 3:
                await asyncio.Event().wait()  # a server that never answers
            await asyncio.sleep(0)
            return item
        finally:
            cleaned.append(item)

    options = RunOptions(item_timeout=0.2, item_retries=1, item_retry_delay=0, max_failures=1)
    runner: ItemRunner[int, int] = ItemRunner(body, options, is_async=True, describe=lambda i: f"file-{i}")
    results = runner.run(range(10))

    assert results == [0, 1, 2, None, 4, 5, 6, 7, 8, 9]
    assert attempts[3] == 2 and cleaned.count(3) == 2  # both attempts cancelled after their cleanup ran
    (failure,) = runner.failures
    assert isinstance(failure.exception, ItemTimeoutError)
    assert "item 3 (file-3) ran longer than item_timeout=0.2s" in failure.error
    assert failure.attempts == 2


def test_an_items_own_timeout_error_is_not_mistaken_for_item_timeout() -> None:
    async def body(position: int, item: int) -> int:
        raise TimeoutError("the server said so")

    runner: ItemRunner[int, int] = ItemRunner(
        body, RunOptions(item_timeout=5, max_failures=None), is_async=True
    )
    runner.run([1])
    assert type(runner.failures[0].exception) is TimeoutError


def test_a_hung_sync_attempt_is_abandoned_and_its_slot_goes_to_the_next_item() -> None:
    release = threading.Event()

    def body(position: int, item: int) -> int:
        if item == 0:
            release.wait(60)  # hangs until the test lets it go
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        body, RunOptions(concurrency=2, item_timeout=0.2, max_failures=None), is_async=False
    )
    try:
        results = runner.run(range(20))
    finally:
        release.set()
    assert results == [None, *range(1, 20)]
    assert isinstance(runner.failures[0].exception, ItemTimeoutError)
    assert runner.failures[0].exception.abandoned
    assert runner.abandoned_attempts == 1


def test_abandoned_sync_threads_are_bounded_by_concurrency() -> None:
    release = threading.Event()
    started: list[int] = []

    def body(position: int, item: int) -> int:
        started.append(item)
        release.wait(60)
        return item

    runner: ItemRunner[int, int] = ItemRunner(
        body, RunOptions(concurrency=2, item_timeout=0.1, max_failures=None), is_async=False
    )
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(range(6))))
    thread.start()
    deadline = time.monotonic() + 30
    while runner.abandoned_attempts < 2 and time.monotonic() < deadline:
        release.wait(0.01)  # waiting for a condition, with a deadline
    # Each worker gave up on its attempt; now both wait for an abandoned thread to end before
    # starting another attempt. Give them time to (wrongly) go on: nothing more may start.
    assert not thread.join(1.0) and thread.is_alive()
    hung = len(started)
    assert hung <= 3 and runner.abandoned_attempts == hung  # bound + the attempts in flight - 1
    release.set()
    thread.join(30)
    (results,) = outcome
    assert results == [None] * hung + list(range(hung, 6))  # the rest ran once threads freed up


@pytest.mark.parametrize("bad", [0, -1, "5", float("nan")])
def test_item_timeout_is_checked(bad: Any) -> None:
    with pytest.raises(Exception, match="item_timeout"):
        RunOptions(item_timeout=bad)
