"""Catching sync Task SDK calls made on the event loop, and saying what to use instead.

While async items run, the Task SDK's channel to the supervisor is wrapped: a sync request from
the loop thread logs a warning (once per kind of request) naming the call and its async
replacement, and a ``DeadlockImminentError`` becomes an ordinary item error with the same advice
(so the item can be retried or tolerated, instead of killing the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .._core import SyncCallOnLoopError
from ._compat import is_deadlock_error, set_supervisor_comms, supervisor_comms

_ADVICE = {
    "GetConnection": "Connection.get() / BaseHook.get_connection()",
    "GetVariable": "Variable.get()",
    "GetXCom": "ti.xcom_pull()",
    "GetXComSequenceItem": "iterating an upstream mapped task's output",
    "GetXComSequenceSlice": "slicing an upstream mapped task's output",
}
_REPLACEMENT = {
    "GetConnection": "await airflow_iterate.aget_connection(conn_id)",
    "GetVariable": "await airflow_iterate.aget_variable(key)",
    "GetXCom": "await airflow_iterate.axcom_pull(context, task_ids=...)",
}


def describe(request: Any) -> tuple[str, str]:
    kind = type(request).__name__
    call = _ADVICE.get(kind, f"a sync Task SDK call ({kind})")
    replacement = _REPLACEMENT.get(kind, "await asyncio.to_thread(<the call>)")
    return call, replacement


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _GuardedComms:
    def __init__(self, comms: Any, loop_thread: int, log: Any) -> None:
        self._comms = comms
        self._loop_thread = loop_thread
        self._log = log
        self._warned: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._comms, name)

    def send(self, msg: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != self._loop_thread or not _loop_running():
            # Another thread, or the loop's thread before or after the loop runs (the run's own
            # last checkpoint write): nothing waits on this call.
            return self._comms.send(msg, *args, **kwargs)
        call, replacement = describe(msg)
        kind = type(msg).__name__
        if kind not in self._warned:
            self._warned.add(kind)
            self._log.warning(
                "%s was called on the event loop: it blocks every async item while it waits; use %s instead",
                call,
                replacement,
            )
        try:
            return self._comms.send(msg, *args, **kwargs)
        except BaseException as exc:
            if not is_deadlock_error(exc):
                raise
            raise SyncCallOnLoopError(
                f"{call} was called on the event loop while another item's async call held the "
                f"connection to the supervisor, which would deadlock; use {replacement} instead"
            ) from exc


@contextlib.contextmanager
def guard_sync_sdk_calls(log: Any) -> Iterator[None]:
    """Wrap the Task SDK's supervisor channel for the duration of an async run (if there is one)."""
    comms = supervisor_comms()
    if comms is None or isinstance(comms, _GuardedComms):
        yield
        return
    set_supervisor_comms(_GuardedComms(comms, threading.get_ident(), log))
    try:
        yield
    finally:
        set_supervisor_comms(comms)
