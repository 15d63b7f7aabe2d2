"""``item_label``: how an item is named in logs, errors, failures and the item ledger.

A format string over the item's arguments (``"{path}"``, ``"{region}/{day}"``) or a callable
taking them as keyword arguments; without one, a short repr of the arguments. A label is data:
it is never rendered as a template, secrets in it are masked, and it is at most
:data:`MAX_LABEL_CHARS` long. A label that cannot be built falls back to the default, and the log
says so once.
"""

from __future__ import annotations

import string
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._core import IterateUsageError, error_text, short_repr
from ._compat import redact

__all__ = ["MAX_LABEL_CHARS", "ItemLabels", "check_label_fields", "describe_arguments"]

MAX_LABEL_CHARS = 200

LabelSpec = str | Callable[..., Any] | None


def describe_arguments(item: Mapping[str, Any]) -> str:
    """The default label: a short repr of the item's arguments (of its one argument's value)."""
    if len(item) == 1:
        name, value = next(iter(item.items()))
        return short_repr(redact({name: value})[name])
    return short_repr(redact(dict(item)))


def check_label_fields(spec: LabelSpec, names: set[str] | None) -> None:
    """Refuse at parse time a label that is neither a string nor a callable, or names no argument."""
    if spec is None or callable(spec):
        return
    if not isinstance(spec, str):
        raise IterateUsageError(
            f"item_label must be a format string such as '{{path}}' or a callable, got "
            f"{type(spec).__name__} {short_repr(spec)}"
        )
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(spec) if field is not None]
    except ValueError as exc:
        raise IterateUsageError(f"item_label {spec!r} is not a valid format string: {exc}") from exc
    for field in fields:
        name = field.split(".", 1)[0].split("[", 1)[0]
        if not name or name.isdigit():
            raise IterateUsageError(
                f"item_label {spec!r} must name the item's arguments, as in '{{path}}', not by position"
            )
        if names is not None and name not in names:
            raise IterateUsageError(
                f"item_label {spec!r} names {name!r}, which is not an argument of the items "
                f"({', '.join(sorted(names))})"
            )


class ItemLabels:
    """Builds labels for one run (called from any thread)."""

    def __init__(self, spec: LabelSpec, log: Any) -> None:
        self._spec = spec
        self._log = log
        self._warned = False
        self._lock = threading.Lock()

    def __call__(self, item: Mapping[str, Any]) -> str:
        spec = self._spec
        if spec is None:
            return describe_arguments(item)
        try:
            built = spec.format_map(item) if isinstance(spec, str) else spec(**item)
            label = built if isinstance(built, str) else str(built)
        except Exception as exc:
            self._fell_back(item, exc)
            return describe_arguments(item)
        label = str(redact(label))
        return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"

    def _fell_back(self, item: Mapping[str, Any], exc: BaseException) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._log.warning(
            "item_label could not name the item %s (%s); such items are named by their arguments",
            describe_arguments(item),
            redact(error_text(exc)),
        )
