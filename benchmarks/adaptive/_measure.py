"""The three experiments: the sweep against each server profile, the capacity change, two chunks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._chunk import ChunkProcesses
from ._client import run
from ._config import Case
from ._servers import Servers

Progress = Callable[[str], None]


def _describe(record: dict[str, Any]) -> str:
    limit = ""
    seconds = record["seconds"]
    if record["concurrency"] == "auto":
        half = [s[1] for s in record["samples"] if s[0] >= seconds / 2]
        if half:
            limit = f", limit ~{sorted(half)[len(half) // 2]}"
    total = record["ok"] + record["refused"] + record["no_response"]
    share = record["refused"] / total if total else 0.0
    rate = f"{record['ok'] / seconds:.1f} req/s (second half {record['ok_second_half'] / (seconds / 2):.1f})"
    return f"{rate}, {record['refused']} refused ({share:.1%}){limit}"


def sweep(servers: Servers, case: Case, progress: Progress) -> dict[str, Any]:
    """Every fixed concurrency of the case, then "auto"."""
    runs = []
    concurrencies: list[int | str] = [*case.fixed, "auto"]
    for concurrency in concurrencies:
        servers.prepare(case)
        seconds = case.auto_seconds if concurrency == "auto" else case.fixed_seconds
        record = run(servers.url(case.rtt_ms), concurrency, seconds).as_json()
        if concurrency != "auto":
            record["samples"] = []  # a fixed run's items in flight: its concurrency, nothing to chart
        progress(f"{case.key}: {record['label']}: {_describe(record)}")
        runs.append(record)
    return {"key": case.key, "label": case.label, "case": _case_json(case), "runs": runs}


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "capacity": case.capacity,
        "rtt_ms": case.rtt_ms,
        "queueing": case.queueing,
        "fixed_seconds": case.fixed_seconds,
        "auto_seconds": case.auto_seconds,
        "fixed": list(case.fixed),
        "service_ms": case.service_ms,
        "latency_at_capacity_ms": case.latency_at_capacity_ms,
        "peak_rate": round(case.peak_rate, 1),
        "server": case.server_settings(),
    }


def capacity_change(
    servers: Servers, case: Case, seconds: float, change_at: tuple[float, float], progress: Progress
) -> dict[str, Any]:
    """One "auto" run; the server's capacity halves at ``change_at[0]`` and comes back at ``[1]``."""
    servers.prepare(case)
    halved = max(1, case.capacity // 2)
    changes: list[list[float]] = []
    timers: list[threading.Timer] = []

    def change(t0: float, capacity: int) -> None:
        servers.server.configure(**case.server_settings(capacity))
        changes.append([round(time.monotonic() - t0, 3), capacity])

    def on_start(t0: float) -> None:
        for at, capacity in zip(change_at, (halved, case.capacity), strict=True):
            timer = threading.Timer(at, change, (t0, capacity))
            timer.daemon = True
            timer.start()
            timers.append(timer)

    try:
        record = run(servers.url(case.rtt_ms), "auto", seconds, on_start=on_start).as_json()
    finally:
        for timer in timers:
            timer.cancel()
    progress(f"capacity change {case.capacity} -> {halved} -> {case.capacity}: {_describe(record)}")
    return {
        "case": _case_json(case),
        "seconds": seconds,
        "planned": [[change_at[0], halved], [change_at[1], case.capacity]],
        "changes": changes,
        "run": record,
    }


def shared_server(
    servers: Servers,
    chunks: ChunkProcesses,
    case: Case,
    experiments: tuple[tuple[float, float], ...],
    progress: Progress,
) -> dict[str, Any]:
    """Two "auto" runs in two processes against one server, once per (seconds, stagger): the
    second starts ``stagger`` s after the first, and both end together."""
    results = []
    for seconds, stagger in experiments:
        servers.prepare(case)
        start = time.monotonic() + 2.0  # each opens its client first
        records = chunks.run(servers.url(case.rtt_ms), start, seconds, stagger)
        progress(
            f"two chunks, second {stagger:g} s later: first {_describe(records[0])}; "
            f"second {_describe(records[1])}"
        )
        results.append({"seconds": seconds, "stagger": stagger, "runs": records})
    return {"case": _case_json(case), "experiments": results}
