"""What one run measures: the server profiles, the fixed sweep, run lengths, the targets."""

from __future__ import annotations

from dataclasses import dataclass

#: the upper bound given to concurrency="auto" (and the largest fixed concurrency tried)
MAX_CONCURRENCY = 1024
#: the engine's default for async items, always in the sweep: what a user gets without tuning
DEFAULT_FIXED = 128
#: round trip added by the delay proxy for the "20 ms" cases
RTT_MS = 20.0
#: what an idle server takes to answer, by capacity (see Case.service_ms)
SERVICE_MS = {8: 50.0, 64: 400.0, 512: 1000.0}
#: responses are counted in bins of this many seconds for the timelines
BIN = 0.25
#: the limit is sampled this often (seconds)
SAMPLE = 0.05
#: overload responses are also counted after the run's first seconds
WARMUP = 2.0

# The targets of the issue; reported, never asserted.
TARGET_THROUGHPUT = 0.9
TARGET_OVERLOAD_SHARE = 0.01
TARGET_SETTLE_SECONDS = 5.0
TARGET_SHARE = (0.4, 0.6)


@dataclass(frozen=True)
class Case:
    """A server profile and the runs against it: each fixed concurrency, then "auto".

    A fixed concurrency's throughput is steady after its first round trip, and is measured over
    the second half of its run; "auto" runs longer, as a task would, and is measured over all of
    it, its ramp-up included (and over its second half, for comparison).
    """

    capacity: int
    rtt_ms: float
    #: latency grows with load (``latency_per_request_ms``), else the server only refuses
    queueing: bool
    fixed_seconds: float = 0.0
    auto_seconds: float = 0.0
    #: the fixed sweep spans capacity x this, up to capacity / this
    span: int = 4

    @property
    def key(self) -> str:
        return f"{'queue' if self.queueing else 'refuse'}-{self.capacity}-{self.rtt_ms:g}ms"

    @property
    def label(self) -> str:
        kind = "latency grows with load" if self.queueing else "refusal only"
        return f"capacity {self.capacity}, {kind}, RTT {self.rtt_ms:g} ms"

    @property
    def service_ms(self) -> float:
        """An idle server's answer time; with ``queueing`` it doubles at ``capacity`` in flight
        (latency grows by ``service_ms / capacity`` per request in flight, as on a server whose
        workers share its CPU), and a refusing server answers in that loaded time from the start,
        so that both serve the same requests per second at their capacity. It grows with the
        capacity so that capacities 8 and 64 serve at most ~80 requests per second, which one
        client process drives even on a busy 2-core machine: the server, not the client, is the
        bound. A server that serves 512 at once would need answers of several seconds for that;
        capacity 512 answers in 1 s instead, and on a small machine the client's CPU is the bound
        long before the server's capacity (the report says which bound each case met)."""
        return SERVICE_MS[self.capacity]

    @property
    def latency_at_capacity_ms(self) -> float:
        return self.service_ms * (2 - 1 / self.capacity)

    def server_settings(self, capacity: int | None = None) -> dict[str, float | int | None]:
        """``capacity`` overrides the case's own (the capacity change), keeping the latency model:
        a server with half its workers gets slower twice as fast with load."""
        capacity = self.capacity if capacity is None else capacity
        if not self.queueing:
            return {
                "capacity": capacity,
                "latency_ms": self.latency_at_capacity_ms,
                "latency_per_request_ms": 0.0,
            }
        per_request = self.service_ms / capacity
        return {"capacity": capacity, "latency_ms": self.service_ms, "latency_per_request_ms": per_request}

    @property
    def peak_rate(self) -> float:
        """Requests per second the server serves at most (at ``capacity`` in flight, with the RTT)."""
        return self.capacity / ((self.latency_at_capacity_ms + self.rtt_ms) / 1000)

    @property
    def fixed(self) -> tuple[int, ...]:
        """Powers of two from a ``span``-th of the capacity to ``span`` times it (at least 4, at most
        MAX_CONCURRENCY), and the engine's default."""
        found = {DEFAULT_FIXED}
        value = 4
        while value <= MAX_CONCURRENCY:
            if self.capacity // self.span <= value <= self.capacity * self.span:
                found.add(value)
            value *= 2
        return tuple(sorted(found))


@dataclass(frozen=True)
class Sizes:
    cases: tuple[Case, ...]
    #: the capacity change: the case, its length, when the capacity halves and when it is restored
    change: Case
    change_seconds: float
    change_at: tuple[float, float]
    #: two "auto" runs sharing one server: the case, then (seconds, the second's delay) per
    #: experiment; the second ends with the first
    shared: Case
    shared_runs: tuple[tuple[float, float], ...]


def _profiles(
    capacity: int, fixed_seconds: float, auto_seconds: float, rtts: tuple[float, ...]
) -> list[Case]:
    found = [Case(capacity, rtt, True, fixed_seconds, auto_seconds) for rtt in rtts]
    found.append(Case(capacity, RTT_MS, False, fixed_seconds, auto_seconds))
    return found


FULL = Sizes(
    cases=(
        *_profiles(8, 5.0, 20.0, (0.0, RTT_MS)),
        *_profiles(64, 8.0, 20.0, (0.0, RTT_MS)),
        Case(512, RTT_MS, True, 10.0, 30.0),
    ),
    change=Case(64, RTT_MS, True),
    change_seconds=36.0,
    change_at=(12.0, 24.0),
    shared=Case(64, RTT_MS, True),
    shared_runs=((24.0, 0.0), (30.0, 6.0)),
)
QUICK = Sizes(
    cases=(Case(8, 0.0, True, 3.0, 8.0, span=2), Case(64, RTT_MS, True, 4.0, 10.0, span=2)),
    change=Case(64, RTT_MS, True),
    change_seconds=15.0,
    change_at=(5.0, 10.0),
    shared=Case(64, RTT_MS, True),
    shared_runs=((10.0, 0.0),),
)
