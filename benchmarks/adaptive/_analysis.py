"""What the saved runs say: ratios, overload shares, settling times, shares of a shared server.

Everything here reads the JSON the benchmark saves (``adaptive.json``), so the report can be made
again without measuring (``--rerender``).
"""

from __future__ import annotations

import statistics
from typing import Any

from ._config import BIN, DEFAULT_FIXED, TARGET_OVERLOAD_SHARE

Run = dict[str, Any]

#: the band around the capacity a limit settles in: +-25 %, and at least +-2
SETTLE_BAND = 0.25
SETTLE_BAND_MIN = 2


def throughput(run: Run) -> float:
    return float(run["ok"]) / float(run["seconds"])


def steady_throughput(run: Run) -> float:
    return float(run["ok_second_half"]) / (float(run["seconds"]) / 2)


def responses(run: Run) -> int:
    return int(run["ok"] + run["refused"] + run["no_response"])


def refused_share(run: Run) -> float:
    total = responses(run)
    return run["refused"] / total if total else 0.0


def refused_share_after_warmup(run: Run) -> float:
    total = run["ok_after_warmup"] + run["refused_after_warmup"]
    return run["refused_after_warmup"] / total if total else 0.0


def limit_stats(run: Run, start: float, stop: float) -> dict[str, float] | None:
    """Median, 10th and 90th percentile of the sampled limit between ``start`` and ``stop`` s."""
    values = sorted(s[1] for s in run["samples"] if start <= s[0] < stop)
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "p10": values[int(0.1 * (len(values) - 1))],
        "p90": values[int(0.9 * (len(values) - 1))],
    }


def slow_start_end(run: Run) -> float | None:
    """When the limit first came down (its first overload or latency cut), seconds into the run."""
    previous = None
    for at, limit, _ in run["samples"]:
        if previous is not None and limit < previous:
            return float(at)
        previous = limit
    return None


def refused_after(run: Run, start: float) -> tuple[int, int]:
    """(503s, responses) from ``start`` seconds into the run to its end (whole bins)."""
    refused = total = 0
    for index, (served, refusals, lost) in enumerate(run["bins"]):
        if index * BIN >= start:
            refused += refusals
            total += served + refusals + lost
    return refused, total


def case_summary(result: dict[str, Any]) -> dict[str, Any]:
    """A fixed concurrency is judged by its steady (second-half) throughput, "auto" by its whole
    run (ramp-up included) and, for comparison, by its second half."""
    runs = result["runs"]
    fixed = [r for r in runs if r["concurrency"] != "auto"]
    auto = next(r for r in runs if r["concurrency"] == "auto")
    best = max(fixed, key=steady_throughput)
    lossless = [r for r in fixed if refused_share(r) <= TARGET_OVERLOAD_SHARE]
    best_lossless = max(lossless, key=steady_throughput) if lossless else None
    default = next((r for r in fixed if r["concurrency"] == DEFAULT_FIXED), None)
    capacity = result["case"]["capacity"]
    # The server was the bound if throughput grew up to its capacity; else the client was.
    server_bound = best["concurrency"] >= capacity
    seconds = auto["seconds"]
    ramp_end = slow_start_end(auto)
    refused, total = refused_after(auto, ramp_end) if ramp_end is not None else (0, 0)
    return {
        "best": best,
        "best_lossless": best_lossless,
        "default": default,
        "auto": auto,
        "ratio": throughput(auto) / steady_throughput(best),
        "ratio_steady": steady_throughput(auto) / steady_throughput(best),
        "ratio_lossless": throughput(auto) / steady_throughput(best_lossless) if best_lossless else None,
        "limit": limit_stats(auto, seconds / 2, seconds),
        "bound": "server" if server_bound else "client",
        "slow_start_end": ramp_end,
        "refused_after_slow_start": refused,
        "refused_share_after_slow_start": refused / total if total else None,
    }


def _level(samples: list[list[float]], start: float, stop: float) -> float | None:
    """Where the limit held at the end of a phase: the median of its last 40 %."""
    phase = [s[1] for s in samples if start <= s[0] < stop]
    if not phase:
        return None
    return float(statistics.median(phase[int(0.6 * len(phase)) :]))


def _settled(samples: list[list[float]], start: float, stop: float, target: float) -> float | None:
    """Seconds from ``start`` until the limit came within the band around ``target`` and stayed
    there until ``stop``; None if it was outside at the end."""
    band = max(SETTLE_BAND * target, SETTLE_BAND_MIN)
    phase = [(s[0], s[1]) for s in samples if start <= s[0] < stop]
    settled_at = start
    for index, (_, limit) in enumerate(phase):
        if abs(limit - target) > band:
            if index + 1 == len(phase):
                return None
            settled_at = phase[index + 1][0]
    return round(settled_at - start, 2)


def _window_counts(run: Run, start: float, stop: float) -> tuple[int, int]:
    """(200s, 503s) in the bins between ``start`` and ``stop`` seconds of the run."""
    ok = refused = 0
    for index, (served, refusals, _) in enumerate(run["bins"]):
        if start <= index * BIN < stop:
            ok += served
            refused += refusals
    return ok, refused


def change_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per phase (before, halved, restored): where the limit settled and how fast.

    Settled: within +-25 % (at least +-2) of the server's new capacity from then on; the limit
    counts requests in flight at the client, which with a round trip are a little more than the
    server holds, and a limit probing for the capacity moves below it and back."""
    run = result["run"]
    seconds = result["seconds"]
    changes = result["changes"] or result["planned"]
    bounds = [0.0, *(at for at, _ in changes), seconds]
    capacities = [result["case"]["capacity"], *(capacity for _, capacity in changes)]
    phases = []
    for index, capacity in enumerate(capacities):
        start, stop = bounds[index], bounds[index + 1]
        settled = _settled(run["samples"], start, stop, capacity) if index > 0 else None
        ok, refused = _window_counts(run, start, stop)
        _, early_refused = _window_counts(run, start, min(stop, start + 5.0))
        late_ok, late_refused = _window_counts(run, start + 5.0, stop)
        phases.append(
            {
                "start": start,
                "stop": stop,
                "capacity": capacity,
                "level": _level(run["samples"], start, stop),
                "settled_after": settled,
                "throughput": ok / (stop - start),
                "refused": refused,
                "refused_first_5s": early_refused,
                "refused_share_after_5s": late_refused / (late_ok + late_refused) if late_ok else 0.0,
                "throughput_after_5s": late_ok / max(BIN, stop - start - 5.0),
            }
        )
    return {"phases": phases}


def shared_summary(experiment: dict[str, Any]) -> dict[str, Any]:
    """Shares of what the server served the two runs, in the second half of the time they shared
    it (the steady state), and per 5-second window of that time."""
    first, second = experiment["runs"]
    origin = first["started_at"]
    end = min(first["started_at"] + first["seconds"], second["started_at"] + second["seconds"])
    overlap_start = second["started_at"]
    steady_start = overlap_start + (end - overlap_start) / 2

    def served(start: float, stop: float) -> list[int]:
        return [
            _window_counts(run, start - run["started_at"], stop - run["started_at"])[0]
            for run in (first, second)
        ]

    steady = served(steady_start, end)
    total = sum(steady) or 1
    windows = []
    at = overlap_start
    while at + 5.0 <= end + 1e-6:
        counts = served(at, at + 5.0)
        windows.append([round(at - origin, 1), round(counts[0] / (sum(counts) or 1), 3)])
        at += 5.0
    refused = [
        _window_counts(run, steady_start - run["started_at"], end - run["started_at"])[1]
        for run in (first, second)
    ]
    limits = [
        limit_stats(run, steady_start - run["started_at"], end - run["started_at"]) for run in (first, second)
    ]
    return {
        "window": [round(steady_start - origin, 2), round(end - origin, 2)],
        "shares": [count / total for count in steady],
        "throughputs": [count / (end - steady_start) for count in steady],
        "refused": refused,
        "limits": limits,
        "total_throughput": total / (end - steady_start),
        "first_share_by_window": windows,
    }
