"""Code running for an item can name it (integrations' errors do), in async and sync items alike."""

from __future__ import annotations

import asyncio

from airflow_iterate._core import ItemRunner, RunOptions, current_item


def test_async_items_see_their_own_item_in_tasks_and_threads_they_start() -> None:
    async def call(index: int, item: str) -> tuple[str | None, str | None, str | None]:
        before = current_item()
        await asyncio.sleep(0.001 * (index % 3))  # interleave the items
        in_thread = await asyncio.to_thread(current_item)
        in_task = await asyncio.ensure_future(asyncio.sleep(0, result=None)) or current_item()
        return before, in_thread, in_task

    runner: ItemRunner[str, object] = ItemRunner(
        call, RunOptions(concurrency=4, item_retries=1), is_async=True, describe=lambda item: repr(item)
    )
    results = runner.run([f"/records/{i}" for i in range(12)])
    for index, result in enumerate(results):
        assert result == (f"item {index} ('/records/{index}')",) * 3


def test_sync_items_and_a_describe_that_fails() -> None:
    def describe(item: int) -> str:
        if item == 3:
            raise ValueError("no label")
        return f"#{item}"

    runner: ItemRunner[int, object] = ItemRunner(
        lambda index, item: current_item(), RunOptions(concurrency=3), is_async=False, describe=describe
    )
    assert runner.run(range(5)) == ["item 0 (#0)", "item 1 (#1)", "item 2 (#2)", "item 3", "item 4 (#4)"]
    assert current_item() is None  # outside any item
