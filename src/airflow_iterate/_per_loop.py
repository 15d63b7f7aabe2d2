"""One object per event loop and key: what the integrations' ``shared()`` hands out.

Every item of a task run calls ``SFTPPool.shared("my_sftp")`` or ``HTTPClient.shared("my_api")``;
the items share one event loop, so they get one pool or client, made on first use. It closes when
the loop ends: ``asyncio.run`` cancels leftover tasks at its end, and a keeper task closes the
object then. Asking again with other options is an error (the first ones would silently win).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["PerLoop"]


class Shareable(Protocol):
    @property
    def closed(self) -> bool: ...

    async def aclose(self) -> None: ...


T = TypeVar("T", bound=Shareable)


@dataclass(eq=False)
class _Entry(Generic[T]):
    value: T
    loop: asyncio.AbstractEventLoop
    key: str
    options: dict[str, Any]
    keeper: asyncio.Task[None] | None = None


def _nothing() -> None:
    return None


class PerLoop(Generic[T]):
    """The objects of one kind that ``shared()`` made, per event loop and key (a connection id).

    :param kind: the class's name, for messages (``"HTTPClient"``).
    :param usage_error: the exception raised for wrong use.
    :param describe: options as a message shows them (never a secret).
    """

    def __init__(
        self, kind: str, usage_error: type[Exception], describe: Callable[[dict[str, Any]], str]
    ) -> None:
        self._kind = kind
        self._usage_error = usage_error
        self._describe = describe
        # an entry goes away with its loop
        self._entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry[T]]] = (
            weakref.WeakKeyDictionary()
        )
        # The entry handed out last: every item of a task asks for the same one, and finds it here
        # without a lookup that allocates (a WeakKeyDictionary makes a weak reference per lookup).
        self._last: Callable[[], _Entry[T] | None] = _nothing

    def get(self, key: str, options: dict[str, Any], create: Callable[[], T]) -> T:
        """The open object for ``key`` on the running loop, made by ``create()`` if there is none."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise self._usage_error(f"{self._kind}.shared() must be called from async code") from None
        last = self._last()
        if (
            last is not None
            and last.loop is loop
            and last.key == key
            and not last.value.closed
            and (not options or options == last.options)
        ):
            return last.value
        entries = self._entries.get(loop)
        if entries is None:
            entries = self._entries[loop] = {}
        entry = entries.get(key)
        if entry is not None and not entry.value.closed:
            if options and options != entry.options:
                raise self._usage_error(
                    f"the shared {self._kind} for {key!r} on this event loop was created with options "
                    f"({self._describe(entry.options)}), not ({self._describe(options)}); pass the "
                    "same options everywhere"
                )
        else:
            entry = _Entry(create(), loop, key, dict(options))
            entries[key] = entry
            entry.keeper = loop.create_task(_keep(entries, entry), name=f"{self._kind}({key!r}) keeper")
        self._last = weakref.ref(entry)
        return entry.value

    def closing(self, value: T) -> None:
        """``value`` is closing on its own: its keeper has nothing left to do."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for entry in (self._entries.get(loop) or {}).values():
            if entry.value is value:
                if entry.keeper is not None and entry.keeper is not asyncio.current_task():
                    entry.keeper.cancel()
                return


async def _keep(entries: dict[str, _Entry[Any]], entry: _Entry[Any]) -> None:
    """Wait for the loop's end (or the object's own close), then close it and forget it: the object
    refers to its loop, and a weak dictionary's value that refers to its key would keep it alive."""
    try:
        await asyncio.Event().wait()
    finally:
        # asyncio.run() cancels leftover tasks before closing the loop: close the object then.
        if entries.get(entry.key) is entry:
            del entries[entry.key]
        await entry.value.aclose()
