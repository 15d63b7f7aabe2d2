"""The item ledger: what a run has done, item by item, as a bounded document others can read.

A run writes it (through its monitor thread, at most once per ``progress_interval``, and once at
the end) to a store that the API server can read while the task runs: the counts, the items in
flight, the failed items and which items are done. Its size is bounded however large the input:

- the items in flight are listed up to :data:`MAX_IN_FLIGHT` (all are counted);
- the failed items are listed in pages of :data:`FAILURES_PER_PAGE`, each under its own key
  (``ledger/failed/<n>``, from 0, in the order they failed; sorted by index at the end of the
  run); the document holds the first :data:`FAILURES_IN_DOCUMENT` and the number of pages. A page
  is written when it changes: a full page does not change again until the end of the run;
- the items done are ranges: items start in input order, so everything before the first item not
  yet pulled is done except the ones in flight (at most ``concurrency`` + 1 ranges, listed up to
  :data:`MAX_RANGES`).

Every text in it is bounded (labels, error messages); the whole document is trimmed to fit one
value of the store (:data:`MAX_DOCUMENT_CHARS`). The format is public and versioned
(:data:`LEDGER_SCHEMA`, :data:`LEDGER_VERSION`); the README documents it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._errors import ItemFailure
from ._stats import RunStatistics

__all__ = [
    "FAILURES_IN_DOCUMENT",
    "FAILURES_PER_PAGE",
    "LEDGER_KEY",
    "LEDGER_SCHEMA",
    "LEDGER_VERSION",
    "Ledger",
    "LedgerStore",
    "RunningItem",
    "failure_page_key",
]

LEDGER_SCHEMA = "airflow-iterate/item-ledger"
LEDGER_VERSION = 1
#: the document's key; failure pages are under ``<LEDGER_KEY>/failed/<n>``
LEDGER_KEY = "ledger"
MAX_IN_FLIGHT = 50
FAILURES_PER_PAGE = 50
FAILURES_IN_DOCUMENT = 10
MAX_RANGES = 500
#: the adaptive limit's latest changes listed (concurrency="auto")
MAX_LIMIT_CHANGES = 20
MAX_LABEL_CHARS = 200
MAX_MESSAGE_CHARS = 300
#: one value of Airflow's task state store holds 64 KB
MAX_DOCUMENT_CHARS = 60_000


def failure_page_key(page: int) -> str:
    return f"{LEDGER_KEY}/failed/{page}"


class LedgerStore(Protocol):
    """Where the ledger goes: ``put(name, value)`` with names like ``ledger``, ``ledger/failed/0``."""

    def put(self, name: str, value: Any) -> None: ...


@dataclass(frozen=True)
class RunningItem:
    """An item in flight, as the ledger lists it."""

    index: int
    label: str
    attempt: int
    since: float  # wall clock, seconds since the epoch


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="milliseconds")


def _failure_entry(failure: ItemFailure) -> dict[str, Any]:
    message = failure.error
    type_name = type(failure.exception).__name__
    if type_name == "RecordedItemError":  # recorded as "Type: message" by the run that raised it
        recorded_type, colon, rest = message.partition(": ")
        if colon and recorded_type.isidentifier():
            type_name, message = recorded_type, rest
    elif message.startswith(f"{type_name}: "):
        message = message[len(type_name) + 2 :]
    return {
        "index": failure.index,
        "label": _clip(failure.input_repr, MAX_LABEL_CHARS),
        "error_type": type_name,
        "message": _clip(message, MAX_MESSAGE_CHARS),
        "attempts": failure.attempts,
    }


def done_ranges(first: int, pulled: int, running: Sequence[int]) -> list[list[int]]:
    """Half-open ranges ``[start, stop)`` of the positions in ``[first, first + pulled)`` not running."""
    ranges: list[list[int]] = []
    start = first
    for index in sorted(running):
        if index > start:
            ranges.append([start, index])
        start = max(start, index + 1)
    if first + pulled > start:
        ranges.append([start, first + pulled])
    return ranges


class Ledger:
    """Builds the ledger document of one run and writes it, with its failure pages, to a store.

    ``about`` is fixed information about the run (the try number, the task, a chunk's window),
    copied into every document. Called from the run's monitor thread and once at the end.
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        about: Mapping[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self._store = store
        self._about = dict(about or {})
        self._clock = clock or time.time
        self._started_at = self._clock()
        self._written_pages: dict[int, int] = {}  # page -> a hash of the indexes it held when written
        self._lock = threading.Lock()
        self.writes = 0

    def write(
        self,
        stats: RunStatistics,
        *,
        state: str,
        offset: int,
        pulled: int,
        running: Sequence[RunningItem],
        failures: Sequence[ItemFailure],
        limit_changes: Sequence[tuple[float, int, str]] = (),
    ) -> dict[str, Any]:
        """Write the document (and the failure pages that changed); returns the document."""
        with self._lock:  # the monitor and the end of the run may both write
            document = self.document(
                stats, state=state, offset=offset, pulled=pulled, running=running, failures=failures
            )
            if stats.limit is not None:  # concurrency="auto": why the run went faster or slower
                document["limit_changes"] = [
                    [_iso(at), limit, reason] for at, limit, reason in limit_changes[-MAX_LIMIT_CHANGES:]
                ]
            pages = (len(failures) + FAILURES_PER_PAGE - 1) // FAILURES_PER_PAGE
            for page in range(pages):
                chunk = failures[page * FAILURES_PER_PAGE : (page + 1) * FAILURES_PER_PAGE]
                # A page changes when it grows, and once more when the run ends: the failures are
                # then sorted by index, which moves items between pages.
                written = hash(tuple(failure.index for failure in chunk))
                if self._written_pages.get(page) != written:
                    self._store.put(failure_page_key(page), [_failure_entry(f) for f in chunk])
                    self._written_pages[page] = written
                    self.writes += 1
            self._store.put(LEDGER_KEY, document)
            self.writes += 1
            return document

    def document(
        self,
        stats: RunStatistics,
        *,
        state: str,
        offset: int,
        pulled: int,
        running: Sequence[RunningItem],
        failures: Sequence[ItemFailure],
    ) -> dict[str, Any]:
        """The ledger document (see the module docstring); at most :data:`MAX_DOCUMENT_CHARS`."""
        now = self._clock()
        ranges = done_ranges(offset, pulled, [item.index for item in running])
        in_flight = sorted(running, key=lambda item: item.index)
        document: dict[str, Any] = {
            "schema": LEDGER_SCHEMA,
            "version": LEDGER_VERSION,
            **self._about,
            "state": state,
            "started_at": _iso(self._started_at),
            "updated_at": _iso(now),
            "total": stats.total,
            "concurrency": stats.concurrency if stats.limit is None else stats.limit,
            "counts": {
                "done": stats.done,
                "succeeded": stats.succeeded,
                "failed": stats.failed,
                "resumed": stats.resumed,
                "retried": stats.retried,
                "in_flight": stats.in_flight,
                "overloaded": stats.overloaded,
            },
            "adaptive": stats.limit is not None,
            "rate": round(stats.rate, 3),
            "eta_seconds": None if stats.eta is None else round(stats.eta, 1),
            "in_flight": [
                {
                    "index": item.index,
                    "label": _clip(item.label, MAX_LABEL_CHARS),
                    "attempt": item.attempt,
                    "running_since": _iso(item.since),
                }
                for item in in_flight[:MAX_IN_FLIGHT]
            ],
            "in_flight_listed": min(len(in_flight), MAX_IN_FLIGHT),
            "failed": [_failure_entry(f) for f in failures[:FAILURES_IN_DOCUMENT]],
            "failed_pages": (len(failures) + FAILURES_PER_PAGE - 1) // FAILURES_PER_PAGE,
            "failures_per_page": FAILURES_PER_PAGE,
            "done_ranges": ranges[:MAX_RANGES],
            "done_ranges_complete": len(ranges) <= MAX_RANGES,
        }
        return _fit(document)


def _fit(document: dict[str, Any]) -> dict[str, Any]:
    """Trim the lists until the document fits one stored value (long labels and messages)."""
    while len(json.dumps(document, separators=(",", ":"))) > MAX_DOCUMENT_CHARS:
        longest = max(("in_flight", "failed", "done_ranges"), key=lambda key: len(document[key]))
        if not document[longest]:
            break
        document[longest] = document[longest][: len(document[longest]) // 2]
        if longest == "in_flight":
            document["in_flight_listed"] = len(document["in_flight"])
        elif longest == "done_ranges":
            document["done_ranges_complete"] = False
    return document
