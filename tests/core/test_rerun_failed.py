"""A run that succeeds with failed items keeps what succeeded, so its failed items can rerun alone."""

from __future__ import annotations

from collections import Counter

from airflow_iterate._core import Checkpoint, ItemRunner, RunOptions
from tests.core.test_survival import MemoryStore


def run(
    store: MemoryStore, calls: Counter[int], broken: set[int], *, rerun_failed: bool | None
) -> list[int | None]:
    checkpoint = Checkpoint(store, "t", keep_finished_runs=True)
    if rerun_failed is not None and checkpoint.finished() is not None:
        checkpoint.load()
        checkpoint.reopen() if rerun_failed else checkpoint.discard()

    def body(position: int, item: int) -> int:
        calls[item] += 1
        if item in broken:
            raise ConnectionError(f"server refused {item}")
        return item * 10

    runner: ItemRunner[int, int] = ItemRunner(
        body, RunOptions(max_failures=None), is_async=False, checkpoint=checkpoint
    )
    return runner.run(range(100))


def test_only_the_failed_items_rerun_and_the_result_is_complete() -> None:
    store, calls = MemoryStore(), Counter[int]()
    first = run(store, calls, {3, 40, 77}, rerun_failed=None)
    assert [i for i, r in enumerate(first) if r is None] == [3, 40, 77]
    assert Checkpoint(store, "t").finished() == {"v": 1, "failed": 3}

    calls.clear()
    second = run(store, calls, set(), rerun_failed=True)
    assert sorted(calls) == [3, 40, 77] and set(calls.values()) == {1}
    assert second == [i * 10 for i in range(100)]  # as if every item had run once
    assert store.data == {}  # a run without failures leaves nothing behind


def test_a_plain_rerun_after_failed_items_runs_everything() -> None:
    store, calls = MemoryStore(), Counter[int]()
    run(store, calls, {5}, rerun_failed=None)
    calls.clear()
    assert run(store, calls, set(), rerun_failed=False) == [i * 10 for i in range(100)]
    assert len(calls) == 100


def test_a_rerun_whose_items_fail_again_stays_rerunnable() -> None:
    store, calls = MemoryStore(), Counter[int]()
    run(store, calls, {5, 6}, rerun_failed=None)
    calls.clear()
    result = run(store, calls, {6}, rerun_failed=True)
    assert sorted(calls) == [5, 6] and result[5] == 50 and result[6] is None
    assert Checkpoint(store, "t").finished() == {"v": 1, "failed": 1}
    calls.clear()
    assert run(store, calls, set(), rerun_failed=True) == [i * 10 for i in range(100)]
    assert sorted(calls) == [6]
