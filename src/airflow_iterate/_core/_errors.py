"""Every exception this package raises on purpose.

Exception tree::

    IterateError                  base class: catch this to catch everything below
    ├── IterateUsageError         wrong call to iterate()/iterate_kwargs() (also a TypeError and a
    │                             ValueError, as .expand() raises either); raised at DAG-parse
    │                             time, before anything runs
    ├── IterateInputError         an input resolved at run time is not something to iterate over
    │                             (also a TypeError): None, an int, a dict where a list of dicts is
    │                             expected, ...; raised before the first item starts
    ├── ItemsFailedError          items raised; ``failures`` holds each one's index, input and
    │                             exception; raised after in-flight items finished
    ├── RecordedItemError         an item's error as another process recorded it (the failures
    │                             of a chunked task, as its gather task sees them)
    ├── SyncCallOnLoopError       an async item made a sync Task SDK call on the event loop that
    │                             would deadlock it (also a RuntimeError); the message names the
    │                             async call to use instead
    ├── IterateTimeoutError       the deadline passed; in-flight items were cancelled and their
    │                             cleanup ran; ``completed`` tells how many had finished
    └── IterateCancelledError     the run was cancelled (the task was killed); in-flight items were
                                  cancelled and their cleanup ran
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ItemFailure",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateTimeoutError",
    "IterateUsageError",
    "RecordedItemError",
    "SyncCallOnLoopError",
    "error_text",
]


class IterateError(Exception):
    """Base class of the errors raised by airflow-iterate."""


class IterateUsageError(IterateError, TypeError, ValueError):
    """iterate()/iterate_kwargs() was called with arguments it cannot accept.

    Both a TypeError and a ValueError: ``.expand()`` raises one or the other for the same
    mistakes (an unknown argument; a value that is not a list, a context variable), so code that
    catches either from ``.expand()`` catches it from ``.iterate()`` too.
    """

    iterate_permanent = True  # raised in an item, the same call is as wrong on the next attempt


class IterateInputError(IterateError, TypeError):
    """An input resolved at run time cannot be iterated over."""


def error_text(exc: BaseException) -> str:
    """``"ValueError: bad row"``: an exception as one line of text."""
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class ItemFailure:
    """One item that raised: its position in the input, a short repr of its input, the exception.

    ``error`` is the exception as text (by default :func:`error_text`); the Airflow layer gives
    it with secrets redacted, so that it can be logged and stored as it is.
    """

    index: int
    input_repr: str
    exception: BaseException
    error: str = ""
    #: attempts made (1 + the retries it got)
    attempts: int = 1

    def __post_init__(self) -> None:
        if not self.error:
            object.__setattr__(self, "error", error_text(self.exception))

    def describe(self) -> str:
        return f"item {self.index} (input {self.input_repr}): {self.error}"


class ItemsFailedError(IterateError):
    """Items raised exceptions; the run stopped starting new items and let in-flight ones finish."""

    #: how many failures are spelled out in the message; all are in ``failures``
    SHOWN = 3

    def __init__(self, failures: Sequence[ItemFailure], *, completed: int, total: int | None) -> None:
        self.failures = list(failures)
        self.completed = completed
        self.total = total
        of_total = f" of {total}" if total is not None else ""
        shown = "; ".join(f.describe() for f in self.failures[: self.SHOWN])
        more = len(self.failures) - self.SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(self.failures)} item(s){of_total} failed ({completed} succeeded before the run "
            f"stopped): {shown}{tail}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: the default reduce would call __init__ with the message alone.
        return (_rebuild, (type(self), (self.failures,), {"completed": self.completed, "total": self.total}))


class RecordedItemError(IterateError):
    """An item's exception as another process recorded it (type and message); the object stayed there."""


class SyncCallOnLoopError(IterateError, RuntimeError):
    """A sync Task SDK call from an async item would deadlock the event loop."""

    iterate_permanent = True  # the item makes the same call on its next attempt


class IterateTimeoutError(IterateError):
    """The run's deadline passed: in-flight items were cancelled after their cleanup ran."""

    def __init__(self, timeout: float, *, completed: int, cancelled: int) -> None:
        self.timeout = timeout
        self.completed = completed
        self.cancelled = cancelled
        super().__init__(
            f"timed out after {timeout:g}s: {completed} item(s) completed, {cancelled} in-flight item(s) "
            "cancelled; raise the timeout or the concurrency, or split the input"
        )

    def __reduce__(self) -> tuple[object, ...]:
        counts = {"completed": self.completed, "cancelled": self.cancelled}
        return (_rebuild, (type(self), (self.timeout,), counts))


class ItemTimeoutError(IterateError, TimeoutError):
    """An attempt of one item ran longer than ``item_timeout``; it counts like any item error.

    An async attempt was cancelled and its cleanup ran; a sync one (``abandoned``) could not be
    interrupted: its thread finishes in the background and its result is not used.
    """

    def __init__(self, index: int, label: str, seconds: float, *, abandoned: bool = False) -> None:
        self.index = index
        self.label = label
        self.seconds = seconds
        self.abandoned = abandoned
        what = (
            "its thread could not be interrupted and finishes in the background, unused"
            if abandoned
            else "it was cancelled after its cleanup ran"
        )
        super().__init__(f"item {index} ({label}) ran longer than item_timeout={seconds:g}s: {what}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), (self.index, self.label, self.seconds), {"abandoned": self.abandoned}))


class IterateCancelledError(IterateError):
    """The run was cancelled from outside (e.g. the task was killed) and stopped cleanly."""

    def __init__(self, reason: str, *, completed: int, cancelled: int) -> None:
        self.reason = reason
        self.completed = completed
        self.cancelled = cancelled
        super().__init__(
            f"{reason}: {completed} item(s) completed, {cancelled} in-flight item(s) cancelled after "
            "their cleanup ran; a rerun resumes from the checkpoint"
        )

    def __reduce__(self) -> tuple[object, ...]:
        counts = {"completed": self.completed, "cancelled": self.cancelled}
        return (_rebuild, (type(self), (self.reason,), counts))


def _rebuild(cls: type[BaseException], args: tuple[object, ...], kwargs: dict[str, object]) -> BaseException:
    return cls(*args, **kwargs)
