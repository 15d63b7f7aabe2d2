"""One measured run: ``ItemRunner`` over GETs to the server, one shared ``httpx.AsyncClient``.

Every item is ``GET /records/<id>`` and ``response.raise_for_status()``: a 503 becomes an
``httpx.HTTPStatusError``, which ``concurrency="auto"`` recognises as overload (the item goes back
and is tried again once the limit has backed off) and a fixed concurrency records as a failed
item (``max_failures=None``: the run goes on). Every response is counted by the time it arrived
and its status, whichever engine retried it; the run's limit (or, for a fixed concurrency, its
items in flight) is sampled every ``SAMPLE`` seconds.

The client spreads its connections over several httpcore pools (:class:`ShardedTransport`):
httpcore 1.0.9 walks every pooled connection for every idle one each time a request enters or
leaves its pool (``_assign_requests_to_connections``, encode/httpcore#1035), so one pool of a few
hundred connections costs milliseconds of CPU per request, and the client rather than the server
becomes the bound. Pools of at most ``SHARD`` connections keep that cost small.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from airflow_iterate._core import ItemRunner, RunOptions, _adaptive, _runner

from ._config import BIN, MAX_CONCURRENCY, SAMPLE, WARMUP
from ._servers import RECORDS

#: connections per httpcore pool
SHARD = 4
#: a status for a request that got no response (a timeout, a reset connection)
NO_RESPONSE = 0

# Constants a benchmark run may change (``--set NAME=VALUE``) to try other parameters.
_TUNABLE = {
    **{
        name: _adaptive
        for name in (
            "TOLERANCE",
            "BASELINE_RESET_ROUNDS",
            "BACKOFF",
            "SERVED_SHARE",
            "REGROW_SHARE",
            "PAST_LAST_OVERLOAD",
            "PROBE_INTERVAL",
            "PROBE_STEP_CAP",
        )
    },
    "INITIAL_AUTO_LIMIT": _runner,
    "MAX_OVERLOAD_RETRIES": _runner,
}


def apply_constants(changes: dict[str, float]) -> None:
    """Set constants of the adaptive limit for this process (they are read when used)."""
    for name, value in changes.items():
        module = _TUNABLE.get(name)
        if module is None:
            raise ValueError(f"not a tunable constant: {name} (known: {', '.join(sorted(_TUNABLE))})")
        current = getattr(module, name)
        setattr(module, name, type(current)(value))


def parse_constants(pairs: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set takes NAME=VALUE, got {pair!r}")
        found[name.strip()] = float(value)
    return found


class _CountedStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any, loads: list[int], shard: int) -> None:
        self._stream = stream
        self._loads = loads
        self._shard = shard
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._loads[self._shard] -= 1
        await self._stream.aclose()


class ShardedTransport(httpx.AsyncBaseTransport):
    """``ceil(in_flight / SHARD)`` httpcore pools; a request goes to the first one with a free
    connection, so that no pool holds more than ``SHARD`` requests and connections are reused
    rather than opened in pools that happen to be next."""

    def __init__(self, in_flight: int) -> None:
        shards = max(1, math.ceil(in_flight / SHARD))
        context = ssl.create_default_context()  # one, not one per pool: each costs a CA load
        limits = httpx.Limits(max_connections=SHARD, max_keepalive_connections=SHARD)
        self._pools = [httpx.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(shards)]
        self._loads = [0] * shards

    def _pick(self) -> int:
        loads = self._loads
        for shard, load in enumerate(loads):
            if load < SHARD:
                return shard
        return min(range(len(loads)), key=loads.__getitem__)  # never while in flight <= in_flight

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loads = self._loads
        shard = self._pick()
        loads[shard] += 1
        try:
            response = await self._pools[shard].handle_async_request(request)
        except BaseException:
            loads[shard] -= 1
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CountedStream(response.stream, loads, shard),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


@dataclass
class RunRecord:
    """One run, as saved: counts over the measured window, timelines, the limit's samples."""

    label: str
    #: an int, or "auto"
    concurrency: int | str
    seconds: float
    #: responses that arrived within ``seconds`` of the start
    ok: int = 0
    refused: int = 0
    no_response: int = 0
    #: the same after the first WARMUP seconds, and over the second half
    ok_after_warmup: int = 0
    refused_after_warmup: int = 0
    ok_second_half: int = 0
    #: per BIN seconds: [200s, 503s, no response]
    bins: list[list[int]] = field(default_factory=list)
    #: [seconds since the start, limit (fixed: the concurrency), items in flight]
    samples: list[list[float]] = field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    failed_items: int = 0
    overloaded: int = 0
    peak_in_flight: int = 0
    client_cpu: float = 0.0
    #: items refused at least once that then succeeded (auto): their time from the first attempt's
    #: start to the answer, median and largest
    put_back_items: int = 0
    put_back_p50_s: float | None = None
    put_back_max_s: float | None = None
    #: the adaptive limit's changes: [seconds since the start, new limit, why] (its last 256)
    changes: list[list[Any]] = field(default_factory=list)
    #: seconds the run went on after the window (items in flight finishing)
    tail: float = 0.0
    #: where the run started on the monotonic clock (shared by the processes of one machine)
    started_at: float = 0.0

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds

    @property
    def steady_throughput(self) -> float:
        return self.ok_second_half / (self.seconds / 2)

    @property
    def refused_share(self) -> float:
        total = self.ok + self.refused + self.no_response
        return self.refused / total if total else 0.0

    @property
    def refused_share_after_warmup(self) -> float:
        total = self.ok_after_warmup + self.refused_after_warmup
        return self.refused_after_warmup / total if total else 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def options_for(concurrency: int | str) -> RunOptions:
    if concurrency == "auto":
        # Zero configuration but the bound; max_failures=None so that an item overloaded past
        # the engine's bound shows as a failed item instead of ending the measurement.
        return RunOptions(concurrency="auto", max_concurrency=MAX_CONCURRENCY, max_failures=None)
    assert isinstance(concurrency, int)
    return RunOptions(concurrency=concurrency, max_failures=None)


async def measure(
    url: str,
    concurrency: int | str,
    seconds: float,
    *,
    start_at: float | None = None,
    on_start: Callable[[float], object] | None = None,
) -> RunRecord:
    """Run items for ``seconds`` (no new item starts after that; the ones in flight finish).

    ``start_at``: the monotonic time to start at (after the client's first connection);
    ``on_start`` is called with the start time (to schedule changes of the server).
    """
    in_flight = MAX_CONCURRENCY if concurrency == "auto" else int(concurrency)
    times: list[float] = []
    statuses: list[int] = []
    latencies: list[float] = []
    samples: list[list[float]] = []
    first_start: dict[int, float] = {}
    refused_items: set[int] = set()
    put_back: list[float] = []
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(
        base_url=url, transport=ShardedTransport(in_flight), timeout=timeout
    ) as client:
        await client.get("/records/1")  # the first connection, and the modules' first use, off the clock
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        t0 = time.monotonic()
        deadline = t0 + seconds
        if on_start is not None:
            on_start(t0)

        def items() -> Iterator[int]:
            n = 0
            while time.monotonic() < deadline:
                yield n
                n += 1

        async def get(position: int, n: int) -> None:
            started = time.monotonic()
            first = first_start.setdefault(position, started)
            try:
                response = await client.get(f"/records/{n % RECORDS + 1}")
            except Exception:
                times.append(time.monotonic() - t0)
                statuses.append(NO_RESPONSE)
                raise
            now = time.monotonic()
            times.append(now - t0)
            status = response.status_code
            statuses.append(status)
            if status == 200:
                latencies.append(now - started)
                del first_start[position]
                if position in refused_items:
                    refused_items.discard(position)
                    put_back.append(now - first)
            elif status == 503:
                refused_items.add(position)
            response.raise_for_status()

        runner: ItemRunner[int, None] = ItemRunner(get, options_for(concurrency), is_async=True)

        async def sample() -> None:
            while True:
                stats = runner.statistics()
                limit = stats.limit if stats.limit is not None else stats.concurrency
                samples.append([round(time.monotonic() - t0, 2), limit, stats.in_flight])
                await asyncio.sleep(SAMPLE)

        sampler = asyncio.ensure_future(sample())
        cpu = time.process_time()
        try:
            await runner.arun(items())
        finally:
            sampler.cancel()
            end = time.monotonic()
        cpu = time.process_time() - cpu
    stats = runner.statistics()
    adaptive = runner._adaptive  # the benchmark's look inside: why the limit changed
    changes = [] if adaptive is None else [[round(c.at - t0, 3), c.limit, c.reason] for c in adaptive.history]
    record = RunRecord(
        label="auto" if concurrency == "auto" else f"fixed {concurrency}",
        concurrency=concurrency,
        seconds=seconds,
        samples=samples,
        changes=changes,
        failed_items=stats.failed,
        overloaded=stats.overloaded,
        peak_in_flight=stats.peak_in_flight,
        client_cpu=round(cpu, 3),
        tail=round(max(0.0, end - deadline), 3),
        started_at=t0,
    )
    _count(record, times, statuses)
    if put_back:
        record.put_back_items = len(put_back)
        record.put_back_p50_s = round(statistics.median(put_back), 2)
        record.put_back_max_s = round(max(put_back), 2)
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=20)
        record.latency_p50_ms = round(statistics.median(latencies) * 1000, 1)
        record.latency_p95_ms = round(cuts[18] * 1000, 1)
    return record


def _count(record: RunRecord, times: list[float], statuses: list[int]) -> None:
    seconds = record.seconds
    bins = [[0, 0, 0] for _ in range(math.ceil(seconds / BIN))]
    for at, status in zip(times, statuses, strict=True):
        if at >= seconds:
            continue
        column = 0 if status == 200 else 1 if status == 503 else 2
        bins[int(at / BIN)][column] += 1
        if column == 0:
            record.ok += 1
            record.ok_after_warmup += at >= WARMUP
            record.ok_second_half += at >= seconds / 2
        elif column == 1:
            record.refused += 1
            record.refused_after_warmup += at >= WARMUP
        else:
            record.no_response += 1
    record.bins = bins


def run(
    url: str,
    concurrency: int | str,
    seconds: float,
    *,
    start_at: float | None = None,
    on_start: Callable[[float], object] | None = None,
) -> RunRecord:
    return asyncio.run(measure(url, concurrency, seconds, start_at=start_at, on_start=on_start))
