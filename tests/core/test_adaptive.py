"""concurrency="auto": the limit finds a server's capacity, backs off on overload, grows back."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_iterate._core import ItemRunner, IterateUsageError, RunOptions
from airflow_iterate._core._adaptive import BACKOFF, SERVED_SHARE, TOLERANCE, AdaptiveLimit
from airflow_iterate._core._gates import AsyncGate
from airflow_iterate._core._overload import overload_signal, parse_retry_after
from airflow_iterate._core._runner import MAX_OVERLOAD_RETRIES

# -- the algorithm, against simulated servers on a simulated clock ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(
    limits: list[AdaptiveLimit],
    clock: Clock,
    capacity: Callable[[float], int],
    *,
    rounds: int,
    rtt: float = 0.02,
) -> list[tuple[float, list[int], int]]:
    """Saturated clients against a server that serves ``capacity`` at once and refuses the rest.

    Each round every client has ``limit`` requests in flight; the server serves the first
    ``capacity`` of all of them (shared in proportion) and refuses the others.
    """
    trace = []
    for _ in range(rounds):
        cap = capacity(clock.now)
        wanted = [limit.current for limit in limits]
        total = sum(wanted)
        served = [want if total <= cap else want * cap // total for want in wanted]
        for limit, want, ok in zip(limits, wanted, served, strict=True):
            for _ in range(ok):
                limit.on_success(rtt)
            for _ in range(want - ok):
                limit.on_overload()
        clock.now += rtt
        trace.append((clock.now, wanted, sum(min(w, s) for w, s in zip(wanted, served, strict=True))))
    return trace


@pytest.mark.parametrize("capacity", [8, 64, 512])
def test_the_limit_settles_at_the_servers_capacity_with_few_refusals(capacity: int) -> None:
    clock = Clock()
    limit = AdaptiveLimit(initial=8, floor=1, ceiling=1024, clock=clock)
    trace = drive([limit], clock, lambda t: capacity, rounds=400)
    settled = trace[100:]
    served = sum(ok for _, _, ok in settled)
    asked = sum(wanted[0] for _, wanted, _ in settled)
    assert served >= 0.9 * capacity * len(settled)  # >= 0.9x a fixed limit at the capacity
    assert asked - served <= 0.01 * asked + len(settled) * 0.02  # refusals about 1% or less


def test_after_a_capacity_change_the_limit_settles_within_seconds() -> None:
    clock = Clock()
    limit = AdaptiveLimit(initial=8, floor=1, ceiling=1024, clock=clock)
    trace = drive([limit], clock, lambda t: 32 if 4 <= t < 8 else 64, rounds=800)

    def limits_between(start: float, stop: float) -> list[int]:
        return [wanted[0] for t, wanted, _ in trace if start <= t < stop]

    assert all(48 <= n <= 72 for n in limits_between(2, 4))  # probes go up to 10 % over
    assert all(24 <= n <= 36 for n in limits_between(4.5, 8))  # halved: settled within 0.5 s
    # restored: probed past the old refusals (steps of 1, 2, 4 per PROBE_INTERVAL), then grown fast
    assert all(48 <= n <= 72 for n in limits_between(10, 16))  # within 2 s


def test_two_runs_sharing_a_server_converge_to_fair_shares() -> None:
    clock = Clock()
    first = AdaptiveLimit(initial=8, floor=1, ceiling=1024, clock=clock)
    second = AdaptiveLimit(initial=100, floor=1, ceiling=1024, clock=clock)
    trace = drive([first, second], clock, lambda t: 100, rounds=2_000)
    late = trace[-500:]
    share = sum(wanted[0] for _, wanted, _ in late) / sum(sum(wanted) for _, wanted, _ in late)
    assert 0.4 <= share <= 0.6


def test_a_queueing_server_holds_the_limit_where_latency_stays_tolerable() -> None:
    clock = Clock()
    limit = AdaptiveLimit(initial=8, floor=1, ceiling=4096, clock=clock)
    for _ in range(500):  # latency grows linearly beyond 64 in flight; nothing is refused
        n = limit.current
        latency = 0.02 * max(1.0, n / 64)
        for _ in range(n):
            limit.on_success(latency)
        clock.now += latency
    assert 64 <= limit.current <= TOLERANCE * 64


def test_the_refusals_of_one_round_trip_cut_the_limit_once() -> None:
    clock = Clock()
    limit = AdaptiveLimit(initial=64, floor=1, ceiling=1024, clock=clock)
    for _ in range(64):  # a round at 64, all served
        limit.on_success(0.02)
    clock.now += 0.02
    assert limit.current == 128  # slow start doubled it
    # The server serves 64 at once and refuses the rest at once, before any success comes back:
    # three rounds' worth of refusals within one round trip.
    for _ in range(3 * 128):
        limit.on_overload()
    assert limit.current == 64  # one cut: to what was served (95 %), but at most halved
    clock.now += 0.01
    for _ in range(60):  # the successes of that round trip come back
        limit.on_success(0.02)
    assert limit.current == 64
    clock.now += 0.015  # a round trip after the cut, refusals are news again
    for _ in range(limit.current):
        limit.on_overload()
    assert limit.current == int(min(64 * BACKOFF, max(32, 60 * SERVED_SHARE)))


def test_a_permit_is_handed_to_the_waiter_and_put_back_items_go_first() -> None:
    async def scenario() -> list[str]:
        gate = AsyncGate(AdaptiveLimit(initial=1, floor=1, ceiling=1))
        order: list[str] = []

        async def take(name: str, *, first: bool = False) -> None:
            await gate.acquire(first=first)
            order.append(name)

        await gate.acquire()
        waiting = [asyncio.create_task(take(f"new {n}")) for n in range(3)]
        await asyncio.sleep(0)
        waiting.append(asyncio.create_task(take("put back", first=True)))
        await asyncio.sleep(0)
        gate.release()
        # Asked after the release, before the woken waiter ran: it must not take the permit.
        waiting.append(asyncio.create_task(take("newcomer")))
        for _ in range(len(waiting)):
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            gate.release()
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(scenario()) == ["put back", "new 0", "new 1", "new 2", "newcomer"]


# -- what counts as overload ---------------------------------------------------------------------


class Throttled(Exception):
    pass


def test_overload_signals() -> None:
    import httpx

    request = httpx.Request("GET", "https://api.example/items/1")
    busy = httpx.Response(503, headers={"Retry-After": "7"}, request=request)
    missing = httpx.Response(404, request=request)
    assert overload_signal(httpx.HTTPStatusError("busy", request=request, response=busy)) == 7.0
    assert overload_signal(httpx.HTTPStatusError("gone", request=request, response=missing)) is None
    assert overload_signal(Throttled()) is None
    assert overload_signal(Throttled(), (Throttled,)) == 0.0
    marked = ConnectionResetError("handshake reset")
    marked.iterate_overload = True  # type: ignore[attr-defined]
    assert overload_signal(marked) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("120") == 120.0 and parse_retry_after("soon") == 0.0


def test_auto_options_are_checked() -> None:
    assert RunOptions(concurrency="auto").concurrency_for(True) == 128
    assert RunOptions(concurrency="auto", max_concurrency=40).concurrency_for(False) == 40
    with pytest.raises(IterateUsageError, match="max_concurrency bounds concurrency='auto'"):
        RunOptions(concurrency=10, max_concurrency=40)
    with pytest.raises(IterateUsageError, match="'auto'"):
        RunOptions(concurrency="fast")  # type: ignore[arg-type]


# -- real runs against an in-process server ------------------------------------------------------


class Overloaded(Exception):
    iterate_overload = True

    def __init__(self, retry_after: float = 0.0) -> None:
        super().__init__("503 Service Unavailable")
        self.retry_after = retry_after


class AsyncServer:
    """Serves ``capacity`` requests at once in 5 ms each, refuses the rest (503)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self.peak = 0
        self.refused = 0
        self.served = 0

    async def get(self, n: int) -> int:
        if self.active >= self.capacity:
            self.refused += 1
            raise Overloaded()
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.005)
        finally:
            self.active -= 1
        self.served += 1
        return n


def test_an_auto_run_completes_every_item_against_a_server_that_refuses_beyond_its_capacity() -> None:
    server = AsyncServer(capacity=16)

    async def body(position: int, n: int) -> int:
        return await server.get(n)

    runner: ItemRunner[int, int] = ItemRunner(body, RunOptions(concurrency="auto"), is_async=True)
    assert runner.run(range(3_000)) == list(range(3_000))  # item_retries=0, yet nothing failed
    stats = runner.statistics()
    assert stats.failed == 0 and stats.overloaded == server.refused > 0
    assert server.refused < 0.1 * server.served
    assert 4 <= stats.limit <= 24  # type: ignore[operator]


def test_an_auto_thread_run_completes_every_item() -> None:
    lock = threading.Lock()
    active = [0]

    def body(position: int, n: int) -> int:
        with lock:
            if active[0] >= 3:
                raise Overloaded()
            active[0] += 1
        try:
            time.sleep(0.002)
        finally:
            with lock:
                active[0] -= 1
        return n

    options = RunOptions(concurrency="auto", max_concurrency=12)
    runner: ItemRunner[int, int] = ItemRunner(body, options, is_async=False)
    assert runner.run(range(600)) == list(range(600))
    assert runner.statistics().failed == 0


def test_retry_after_pauses_every_start() -> None:
    starts: list[float] = []
    refused = [False]

    async def body(position: int, n: int) -> int:
        starts.append(time.monotonic())
        if n == 5 and not refused[0]:
            refused[0] = True
            raise Overloaded(retry_after=0.4)
        await asyncio.sleep(0.001)
        return n

    runner: ItemRunner[int, int] = ItemRunner(
        body, RunOptions(concurrency="auto", max_concurrency=4), is_async=True
    )
    assert runner.run(range(40)) == list(range(40))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert max(gaps) >= 0.35  # nothing started while the server's pause lasted


def test_an_item_overloaded_past_the_bound_fails_like_any_error() -> None:
    async def body(position: int, n: int) -> int:
        if n == 1:
            raise Overloaded()
        return n

    options = RunOptions(concurrency="auto", max_concurrency=4, max_failures=None)
    runner: ItemRunner[int, int] = ItemRunner(body, options, is_async=True)
    assert runner.run(range(3)) == [0, None, 2]
    assert runner.statistics().overloaded == MAX_OVERLOAD_RETRIES


def test_overload_on_declares_a_users_exception() -> None:
    calls: dict[int, int] = {}

    async def body(position: int, n: int) -> int:
        calls[n] = calls.get(n, 0) + 1
        if calls[n] == 1 and n % 2:
            raise Throttled("slow down")
        return n

    options = RunOptions(concurrency="auto", overload_on=(Throttled,))
    runner: ItemRunner[int, int] = ItemRunner(body, options, is_async=True)
    assert runner.run(range(10)) == list(range(10))
    assert runner.statistics().overloaded == 5 and runner.statistics().retried == 0
    assert "limit" in runner.statistics().describe()


def describe(stats: Any) -> str:
    return str(stats.describe())
