"""What a run has done so far, as an immutable snapshot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RunStatistics"]


@dataclass(frozen=True)
class RunStatistics:
    """A snapshot of a run, cheap enough to take from a progress reporter at any time.

    ``resumed`` items succeeded in an earlier attempt and were not run again; ``retried`` counts
    extra attempts (an item that succeeded on its third attempt adds 2).
    """

    concurrency: int
    total: int | None
    started: int
    succeeded: int
    failed: int
    resumed: int
    retried: int
    in_flight: int
    peak_in_flight: int
    elapsed: float
    #: the adaptive limit now (``concurrency="auto"``), else None
    limit: int | None = None
    #: attempts refused for overload and put back (``concurrency="auto"``)
    overloaded: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.resumed

    @property
    def rate(self) -> float:
        """Items finished per second by this attempt (resumed items excluded)."""
        return (self.succeeded + self.failed) / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds until every item is done at the current rate, if the total is known."""
        if self.total is None or self.rate <= 0 or self.done >= self.total:
            return None  # unknown, or nothing left to wait for
        return max(0, self.total - self.done) / self.rate

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "done": self.done, "rate": round(self.rate, 3)}

    def describe(self) -> str:
        total = "?" if self.total is None else f"{self.total:,}"
        eta = "" if self.eta is None else f", ETA {self.eta:,.0f}s"
        resumed = f" (+{self.resumed:,} resumed)" if self.resumed else ""
        adaptive = (
            f", limit {self.limit} (auto), {self.overloaded:,} overloaded" if self.limit is not None else ""
        )
        return (
            f"{self.succeeded + self.failed:,}{resumed} / {total} done, {self.failed:,} failed, "
            f"{self.in_flight} in flight, {self.retried:,} retries{adaptive}, {self.rate:,.1f} items/s{eta}"
        )
