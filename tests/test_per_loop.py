"""What ``SFTPPool.shared()`` and ``HTTPClient.shared()`` are built on: one object per event loop and
key, closed with its loop, and nothing kept once the loop is gone."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from airflow_iterate._per_loop import PerLoop


class Client:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closes = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self.closes += 1
        self._closed = True


class UsageError(Exception):
    pass


def _registry() -> PerLoop[Client]:
    return PerLoop("Client", UsageError, lambda options: ", ".join(sorted(options)) or "none")


def test_one_object_per_loop_and_key_closed_when_the_loop_ends() -> None:
    shared = _registry()
    made: list[Client] = []

    def make(name: str) -> Client:
        made.append(Client(name))
        return made[-1]

    async def task_run() -> tuple[Client, Client, Client]:
        first = shared.get("a", {}, lambda: make("a"))
        again = await asyncio.gather(
            *(asyncio.sleep(0, shared.get("a", {}, lambda: make("a"))) for _ in range(50))
        )
        other = shared.get("b", {}, lambda: make("b"))
        assert all(c is first for c in again) and not first.closed
        return first, other, shared.get("a", {}, lambda: make("a"))

    first, other, last = asyncio.run(task_run())
    assert [c.name for c in made] == ["a", "b"] and last is first
    assert first.closed and other.closed and first.closes == 1  # closed as the loop ended
    second, _, _ = asyncio.run(task_run())
    assert second is not first  # a new loop, a new object


def test_a_closed_object_is_replaced_and_other_options_are_refused() -> None:
    shared = _registry()

    async def main() -> None:
        first = shared.get("a", {"size": 4}, lambda: Client("a"))
        assert shared.get("a", {}, lambda: Client("x")) is first  # no options: whatever it has
        with pytest.raises(UsageError, match=r"created with options \(size\), not \(other\); pass the same"):
            shared.get("a", {"other": 1}, lambda: Client("x"))
        await first.aclose()
        shared.closing(first)
        await asyncio.sleep(0)  # the keeper sees its cancellation
        second = shared.get("a", {}, lambda: Client("second"))
        assert second is not first and second.name == "second" and not second.closed

    asyncio.run(main())
    with pytest.raises(UsageError, match="must be called from async code"):
        shared.get("a", {}, lambda: Client("a"))


def test_nothing_is_kept_once_the_loop_is_gone() -> None:
    """The objects refer to their loop; an entry left in the registry would keep both alive."""
    shared = _registry()
    loops: list[weakref.ref[Any]] = []
    clients: list[weakref.ref[Client]] = []

    async def task_run() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        client = shared.get("a", {}, lambda: Client("a"))
        client.loop = asyncio.get_running_loop()  # type: ignore[attr-defined]
        clients.append(weakref.ref(client))

    for _ in range(3):
        asyncio.run(task_run())
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]
    assert [ref() for ref in clients] == [None, None, None]
