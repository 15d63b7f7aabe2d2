"""Checks of option values, shared by the core, the Airflow layer and the integrations.

Each returns the normalised value or raises ``error`` (the caller's usage error: the core's and
the Airflow layer's :class:`IterateUsageError`, the SFTP integration's ``SFTPPoolUsageError``)
with a message naming the option, what it takes and what it got.
"""

from __future__ import annotations

import math

from ._errors import IterateUsageError

__all__ = ["exception_types", "flag", "optional_seconds", "positive_int", "seconds"]


def _got(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def positive_int(
    name: str, value: object, *, minimum: int = 1, error: type[Exception] = IterateUsageError
) -> int:
    """An int of at least ``minimum`` (bools refused: ``True`` is no count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an int, got {_got(value)}")
    if value < minimum:
        raise error(f"{name} must be at least {minimum}, got {value}")
    return value


def flag(name: str, value: object, *, error: type[Exception] = IterateUsageError) -> bool:
    """``True`` or ``False``, nothing else (``1`` or ``"false"`` are most likely mistakes)."""
    if not isinstance(value, bool):
        raise error(f"{name} must be True or False, got {_got(value)}")
    return value


def seconds(
    name: str, value: object, *, allow_zero: bool = True, error: type[Exception] = IterateUsageError
) -> float:
    """A duration: a number of seconds or anything with ``total_seconds()`` (a ``timedelta``)."""
    total = getattr(value, "total_seconds", None)
    number = total() if callable(total) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
        raise error(f"{name} must be a number of seconds or a timedelta, got {_got(value)}")
    if number < 0 or (number == 0 and not allow_zero):
        raise error(f"{name} must be {'>=' if allow_zero else '>'} 0 seconds, got {value!r}")
    return float(number)


def optional_seconds(
    name: str, value: object, *, allow_zero: bool = True, error: type[Exception] = IterateUsageError
) -> float | None:
    """:func:`seconds`, or ``None`` for "no limit"."""
    return None if value is None else seconds(name, value, allow_zero=allow_zero, error=error)


def exception_types(
    name: str, value: object, *, error: type[Exception] = IterateUsageError
) -> tuple[type[BaseException], ...]:
    """An exception class or a tuple of them, always as a tuple."""
    types = value if isinstance(value, tuple) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise error(f"{name} must be an exception class or a tuple of them, got {t!r}")
    return types  # type: ignore[return-value]
