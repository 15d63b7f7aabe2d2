"""``concurrency="auto"``: a limit on items in flight that finds the server's capacity by itself.

The limit is updated once per *round*: once as many attempts as the limit allows have ended (or
two round trips have passed, whichever comes first), from what that round saw:

- **Overload** (the server said "too much": an HTTP 429 or 503, a refused SSH handshake, what
  ``overload_on`` names), at the first refusal, not at the end of the round: the limit becomes
  ``BACKOFF`` (85 %) of itself, or ``SERVED_SHARE`` (95 %) of what the server served in the last
  round trip if that is less (the attempts that succeeded within one latency of now: by Little's
  law, how many it serves at once), never below half of itself. At most one cut per round trip:
  refusals come back at once, before the successes of the same round trip, and every attempt in
  flight when the limit was too high meets the same overload; cutting again for each of them
  would cascade far below the capacity. A ``Retry-After`` also pauses new starts for that long.
- **Latency** (smoothed over rounds) grew past ``TOLERANCE`` x the baseline (the lowest round
  latency seen, the idea of TCP Vegas and Netflix's Gradient limiters): the server queues, so the
  limit shrinks in proportion, ``limit x tolerance x baseline / latency``. Latency that stays
  high for ``BASELINE_RESET_ROUNDS`` rounds however low the limit goes is a slower path, not a
  queue: it becomes the baseline.
- **Otherwise** it grows: doubling per round until the first overload or latency rise ("slow
  start", as TCP does, to reach a large capacity in a few round trips); after a cut to what was
  served, by ``sqrt(limit)`` per round up to ``REGROW_SHARE`` (90 %) of it, then (and at once
  after an ordinary 85 % cut) by one per ``PROBE_INTERVAL`` (doubling while no refusal comes, at
  most 10 % of the limit), so that probing costs few refused requests; past the limit that met
  the overload, capacity grew: ``sqrt(limit)`` per round again.

Why this one: AIMD alone finds the point where the server refuses and oscillates around it,
every cut a burst of refused requests; a latency gradient alone never sees a server that refuses
instead of queueing. Here a refusing server is met within a few round trips at about its
capacity, and a queueing one is held where its latency is ``TOLERANCE`` x the unloaded one (its
throughput does not grow past that point anyway). Independent runs against one server (the
chunks of a task, other tasks) converge towards equal shares as TCP flows do: the multiplicative
cut takes more from the larger share, and the additive probe adds the same to each.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AdaptiveLimit", "LimitChange"]

#: latency may grow this much over the baseline before the limit shrinks
TOLERANCE = 3.0
#: rounds of high latency that no cut brought down before the baseline moves up to it
BASELINE_RESET_ROUNDS = 20
#: on overload the limit keeps this share of itself ...
BACKOFF = 0.85
#: ... and at most this share of what the server served at once
SERVED_SHARE = 0.95
#: after a cut the limit grows back fast to this share of what the server served at once, then
#: slowly (a probe per PROBE_INTERVAL)
REGROW_SHARE = 0.9
#: past this multiple of the limit that met overload, capacity grew: fast growth again
PAST_LAST_OVERLOAD = 1.0
#: seconds between two probes near the last overload ...
PROBE_INTERVAL = 0.5
#: ... each growing the limit by 1, then 2, 4, ... while no overload comes, at most by this share
PROBE_STEP_CAP = 0.1
#: changes kept for reporting
HISTORY = 256


@dataclass(frozen=True)
class LimitChange:
    """The limit changed at ``at`` (monotonic seconds) to ``limit``, because of ``reason``."""

    at: float
    limit: int
    reason: str  # "grow", "latency", "overload"


class AdaptiveLimit:
    """The adaptive limit of one run; thread-safe, cheap per sample (an update per round)."""

    def __init__(
        self,
        *,
        initial: int,
        floor: int,
        ceiling: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got {floor}, {ceiling}")
        self.floor = floor
        self.ceiling = ceiling
        self._limit = float(min(max(initial, floor), ceiling))
        self._clock = clock
        self._lock = threading.Lock()
        self._round_start = clock()
        self._round_ok = 0
        self._round_overloaded = 0
        self._round_latency = 0.0
        self._baseline: float | None = None
        self._smoothed: float | None = None
        self._slow_rounds = 0
        self._slow_start = True
        self._last_overload: float | None = None
        self._last_probe = -math.inf
        self._probe_from = math.inf
        self._probe_step = 1.0
        self._pause_until = 0.0
        self._last_cut = -math.inf
        self._served_at: deque[float] = deque()
        self.overloads = 0
        self.history: deque[LimitChange] = deque(maxlen=HISTORY)

    @property
    def current(self) -> int:
        """Items allowed in flight now."""
        return int(self._limit)

    def pause_remaining(self) -> float:
        """Seconds until new starts are allowed again (after a ``Retry-After``), 0 if none."""
        return max(0.0, self._pause_until - self._clock())

    def on_success(self, latency: float) -> None:
        """An attempt ended without overload after ``latency`` seconds."""
        with self._lock:
            self._round_ok += 1
            self._round_latency += latency
            self._count_served()
            self._maybe_end_round()

    def on_overload(self, retry_after: float | None = None) -> None:
        """An attempt was refused for overload; ``retry_after`` is the server's own pause, if any."""
        with self._lock:
            self.overloads += 1
            self._round_overloaded += 1
            if retry_after is not None and retry_after > 0:
                self._pause_until = max(self._pause_until, self._clock() + min(retry_after, 300.0))
            # At once, not at the end of the round: a refusal comes back at once, and every
            # permit it frees would start another attempt that meets the same refusal.
            self._cut()
            self._maybe_end_round()

    def round_trip(self) -> float | None:
        """The smoothed latency of an attempt, once one has succeeded."""
        return self._smoothed if self._smoothed is not None else self._baseline

    def _count_served(self) -> None:
        """Remember when this success ended, to know what was served in the last round trip."""
        now = self._clock()
        served = self._served_at
        served.append(now)
        window = self.round_trip()
        horizon = now - (window if window is not None else 1.0)
        while served and served[0] <= horizon:
            served.popleft()

    def _served_in_last_round_trip(self, now: float) -> int | None:
        window = self.round_trip()
        if window is None:
            return None
        horizon = now - window
        served = self._served_at
        while served and served[0] <= horizon:
            served.popleft()
        return len(served)

    def _maybe_end_round(self) -> None:
        now = self._clock()
        ended = self._round_ok + self._round_overloaded
        timed_out = self._baseline is not None and now - self._round_start >= 2 * self._baseline and ended > 0
        if ended < max(1, int(self._limit)) and not timed_out:
            return
        ok, overloaded = self._round_ok, self._round_overloaded
        latency = self._round_latency / ok if ok else None
        self._round_start = now
        self._round_ok = self._round_overloaded = 0
        self._round_latency = 0.0
        limit = self._limit
        if overloaded:
            return  # cut already, when the refusal came
        if latency is None:
            return
        if self._baseline is None or latency < self._baseline:
            self._baseline = latency
        # Smoothed over rounds: one slow round (a busy CPU, a GC pause) is not a queue.
        smoothed = latency if self._smoothed is None else self._smoothed * 0.7 + latency * 0.3
        self._smoothed = smoothed
        latency = smoothed
        if latency > TOLERANCE * self._baseline:
            self._slow_start = False
            self._slow_rounds += 1
            if self._slow_rounds >= BASELINE_RESET_ROUNDS:
                # Latency stayed high however far the limit came down: the path got slower (a new
                # route, a busier server), not the queue longer. It is the new baseline.
                self._baseline = latency
                self._slow_rounds = 0
                return
            self._set(limit * TOLERANCE * self._baseline / latency, "latency")
            return
        self._slow_rounds = 0
        if ended < int(limit):
            return  # the input, not the limit, was the bound this round: no news about capacity
        if self._slow_start:
            grown = limit * 2
        elif self._last_overload is not None and self._probe_from <= limit:
            if limit > self._last_overload * PAST_LAST_OVERLOAD:
                self._last_overload = None  # capacity grew past the old refusals: probe fast again
                grown = limit + math.sqrt(limit)
            elif now - self._last_probe >= PROBE_INTERVAL:
                # Near where the server refused, a probe costs a refusal: one step per interval,
                # the same pace for every run sharing the server (fairness), few refusals; the
                # step doubles while no refusal comes (up to 10 % of the limit), so that a limit
                # finds capacity that came back within seconds.
                self._last_probe = now
                grown = limit + min(self._probe_step, max(1.0, limit * PROBE_STEP_CAP))
                self._probe_step *= 2  # no refusal since the last probe: capacity may have grown
            else:
                return
        elif self._last_overload is not None:
            grown = min(limit + math.sqrt(limit), self._probe_from)
        else:
            grown = limit + math.sqrt(limit)
        self._set(grown, "grow")

    def _cut(self) -> None:
        now = self._clock()
        self._slow_start = False
        round_trip = self.round_trip()
        if round_trip is not None and now - self._last_cut < round_trip:
            return  # the attempts of the round trip the last cut answered: already counted
        self._last_cut = now
        limit = self._limit
        self._last_overload = limit
        # Multiplicative decrease (fair between runs sharing the server), but never above what
        # the server actually served (fast after a large drop in capacity). At most halved per
        # round trip: a window that missed slow successes is no reason to drop to the floor, and
        # halving still meets a large drop within a few round trips.
        served = self._served_in_last_round_trip(now) or 0
        self._set(min(limit * BACKOFF, max(limit * 0.5, served * SERVED_SHARE)), "overload")
        # After a cut to what was served (the capacity fell, or slow start overshot), back to just
        # under it in a few rounds, then probe slowly: growing by probes alone would leave
        # capacity unused for many round trips when a round trip is long. After an ordinary
        # multiplicative cut, probes only: growing back in proportion would keep every run that
        # shares the server at its share, fair or not.
        drop = served * SERVED_SHARE < limit * BACKOFF
        self._probe_from = max(self._limit, REGROW_SHARE * served) if drop else self._limit
        self._probe_step = 1.0

    def _set(self, value: float, reason: str) -> None:
        before = int(self._limit)
        self._limit = min(max(value, float(self.floor)), float(self.ceiling))
        current = int(self._limit)
        if current != before:
            self.history.append(LimitChange(self._clock(), current, reason))
