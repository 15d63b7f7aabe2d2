"""What the table benchmarks (SFTP, HTTP) share about a measured row: when other load disturbed
it, which of several attempts describes the approach, and the targets stated against it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "DISTURBED_MIN_SECONDS",
    "DISTURBED_SHARE",
    "RETRY_IF_SHORTER",
    "Target",
    "by_key",
    "is_disturbed",
    "least_disturbed",
]

#: a row is flagged (and, when short, measured again) if other processes on the machine used
#: more than this share of one core while it ran, and more than DISTURBED_MIN_SECONDS (the
#: kernel's own network processing shows as a little "other" time in every row)
DISTURBED_SHARE = 0.25
DISTURBED_MIN_SECONDS = 0.5
#: a row disturbed by other load is measured again when its process took less than this
RETRY_IF_SHORTER = 60.0


class _Row(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def link(self) -> str: ...
    @property
    def other_cpu(self) -> float: ...
    @property
    def details(self) -> dict[str, Any]: ...
    @property
    def disturbed(self) -> bool: ...


R = TypeVar("R", bound=_Row)


def is_disturbed(other_cpu: float, window: float) -> bool:
    """Whether other processes' CPU time over a row's ``window`` seconds makes it suspect."""
    return other_cpu > max(DISTURBED_MIN_SECONDS, DISTURBED_SHARE * window)


def least_disturbed(once: Callable[[int], R], attempts: int, progress: Callable[[str], None]) -> R:
    """Run ``once(attempt)`` until a run is undisturbed, long, or ``attempts`` ran; the run least
    disturbed by the rest of the machine is the one that describes the approach."""
    runs: list[R] = []
    for attempt in range(1, attempts + 1):
        found = once(attempt)
        runs.append(found)
        if attempt == attempts or not found.disturbed or found.details["process_wall"] >= RETRY_IF_SHORTER:
            break
        progress(f"  disturbed by other load ({found.other_cpu:.1f} CPU s); measuring again")
    chosen = min(runs, key=lambda m: m.other_cpu / m.details["process_wall"])
    chosen.details["attempts"] = len(runs)
    return chosen


@dataclass(frozen=True)
class Target:
    label: str
    value: float
    wanted: float

    @property
    def met(self) -> bool:
        return self.value >= self.wanted


def by_key(rows: Iterable[R], link: str) -> dict[str, R]:
    """The rows measured over ``link``, by their key."""
    return {row.key: row for row in rows if row.link == link}
