"""The options of ``iterate()`` / ``iterate_kwargs()``: named and typed once, checked at parse time.

:class:`IterateOptions` is the one list of option names and types (the signature of
``iterate_kwargs`` unpacks it). The options that shape a run are the core's :class:`RunOptions`
fields of the same names, validated there; the four that shape the task (checkpointing, the
split into chunks, how items are named) are validated here. :class:`IterateSettings` carries
both, whole, to the operators.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypedDict

from .._core import RUN_OPTION_NAMES, IterateUsageError, RunOptions
from .._core._validate import flag
from ._labels import check_label_fields

__all__ = ["OPTION_NAMES", "TASK_OPTION_NAMES", "IterateOptions", "IterateSettings"]


class IterateOptions(TypedDict, total=False):
    """Keyword-only options of ``iterate()`` / ``iterate_kwargs()`` (the README explains each)."""

    #: items running at once (default 128 for ``async def`` functions on one event loop, 8 threads),
    #: or ``"auto"``: a limit that adapts to the server, up to ``max_concurrency``
    concurrency: int | Literal["auto"] | None
    #: the upper bound of ``concurrency="auto"`` (default: the fixed default above)
    max_concurrency: int | None
    #: exception class(es) that mean "the server is overloaded" to ``concurrency="auto"``
    overload_on: type[BaseException] | tuple[type[BaseException], ...]
    #: extra attempts for an item that raises one of ``item_retry_on``
    item_retries: int
    #: the first retry's delay; it doubles each time, with jitter
    item_retry_delay: float | timedelta
    #: the cap on one retry delay
    item_retry_max_delay: float | timedelta
    #: exception class(es) worth retrying (default: any Exception)
    item_retry_on: type[BaseException] | tuple[type[BaseException], ...]
    #: retry errors that are permanent too (a missing file, a refused login, an HTTP 404)
    item_retry_permanent: bool
    #: seconds (or a timedelta) one attempt of an item may take; None: no limit
    item_timeout: float | timedelta | None
    #: how items are named in logs, errors, failures and the item ledger: a format string over the
    #: item's arguments (``"{path}"``) or a callable taking them as keyword arguments
    item_label: str | Callable[..., Any] | None
    #: failed items tolerated: a count, a ratio in (0, 1) of the input, or None for no limit
    max_failures: int | float | None
    #: record succeeded items so that a rerun of the task skips them
    checkpoint: bool
    #: how often the checkpoint is written
    checkpoint_interval: float | timedelta
    #: how often progress is logged and reported as metrics
    progress_interval: float | timedelta
    #: item starts across the whole task, like ``"200/s"`` or ``"30/min"``
    rate_limit: str | float | None
    #: refuse inputs with more items than this (None: no limit)
    max_items: int | None
    #: split the input over mapped task instances of this many items each
    chunk_size: int | None
    #: split the input over this many mapped task instances instead
    chunks: int | None


#: every option name, in the order the README lists them
OPTION_NAMES: frozenset[str] = frozenset(IterateOptions.__annotations__)
#: the options that shape the task (and how it names items); every other option is a field of the
#: core's RunOptions
TASK_OPTION_NAMES = frozenset({"checkpoint", "chunk_size", "chunks", "item_label"})


@dataclass(frozen=True)
class IterateSettings:
    """The validated options of one ``.iterate()`` call: the run's, and the task's own."""

    run: RunOptions = dataclasses.field(default_factory=RunOptions)
    checkpoint: bool = True
    chunk_size: int | None = None
    chunks: int | None = None
    item_label: str | Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        check_label_fields(self.item_label, None)
        for name in ("chunk_size", "chunks"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise IterateUsageError(f"{name} must be a positive int or None, got {value!r}")
        if self.chunk_size is not None and self.chunks is not None:
            raise IterateUsageError(
                "pass chunk_size (items per task instance) or chunks (number of task instances), not both"
            )
        flag("checkpoint", self.checkpoint)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, function: str = "iterate") -> IterateSettings:
        """Check and split the options a DAG author passed (``function`` names the call in errors)."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            hints = "".join(
                f"; did you mean {match[0]!r} for {name!r}?"
                for name in unknown
                if (match := difflib.get_close_matches(name, OPTION_NAMES, n=1, cutoff=0.75))
            )
            raise IterateUsageError(
                f"{function}() got unknown option(s) {', '.join(map(repr, unknown))}{hints} "
                f"(the options are {', '.join(sorted(OPTION_NAMES))})"
            )
        run = RunOptions(**{name: value for name, value in options.items() if name in RUN_OPTION_NAMES})
        return cls(run=run, **{name: value for name, value in options.items() if name in TASK_OPTION_NAMES})

    @property
    def chunked(self) -> bool:
        return self.chunk_size is not None or self.chunks is not None
