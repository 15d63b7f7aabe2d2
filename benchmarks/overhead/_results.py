"""Turning raw timings into per-item rows and the ratios the targets are stated in."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import ASYNC_CONCURRENCY, SYNC_THREADS
from ._timing import Timing


@dataclass(frozen=True)
class Row:
    key: str
    group: str
    label: str
    items: int
    best_us: float
    median_us: float


@dataclass(frozen=True)
class Ratio:
    label: str
    value: float
    target: str
    met: bool | None  # None: reported for information, no target


_A, _S = ASYNC_CONCURRENCY, SYNC_THREADS
_MICRO_ROWS = (
    ("floor_async", "Raw floor", f"asyncio.gather + Semaphore({_A}), no-op"),
    ("floor_async_yield", "Raw floor", f"asyncio.gather + Semaphore({_A}), item awaits sleep(0)"),
    ("floor_sync", "Raw floor", f"ThreadPoolExecutor({_S}).map, no-op"),
    ("core_async", "Core", f"ItemRunner async ({_A}), no-op"),
    ("core_async_yield", "Core", f"ItemRunner async ({_A}), item awaits sleep(0)"),
    ("core_sync", "Core", f"ItemRunner threads ({_S}), no-op"),
    ("core_async_ledger", "Core", f"ItemRunner async ({_A}), no-op, labels + item ledger"),
    ("core_sync_ledger", "Core", f"ItemRunner threads ({_S}), no-op, labels + item ledger"),
    ("core_async_timeout", "Core", f"ItemRunner async ({_A}), no-op, item_timeout"),
    ("core_sync_timeout", "Core", f"ItemRunner threads ({_S}), no-op, item_timeout"),
    ("layer_async", "Airflow layer", "ItemInvoker + ItemRunner, async def noop(x)"),
    ("layer_async_context", "Airflow layer", "ItemInvoker + ItemRunner, async def noop(x, **context)"),
    ("layer_sync", "Airflow layer", "ItemInvoker + ItemRunner, def noop(x)"),
)


def micro_rows(timings: dict[str, Timing]) -> list[Row]:
    return [
        Row(key, group, label, timings[key].items, timings[key].best_us, timings[key].median_us)
        for key, group, label in _MICRO_ROWS
    ]


def dagrun_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for task_id, label in (
        ("iterate_async", "dag.test(): .iterate() async, execute() time / N"),
        ("iterate_sync", "dag.test(): .iterate() sync, execute() time / N"),
    ):
        items = data["items"][task_id]
        seconds = data["execute_seconds"][task_id]
        timing = Timing(items, tuple(seconds))
        rows.append(Row(task_id, "Real task instance", label, items, timing.best_us, timing.median_us))
    for task_id, label in (
        ("iterate_async", "dag.test(): .iterate() async, whole TI duration / N"),
        ("iterate_sync", "dag.test(): .iterate() sync, whole TI duration / N"),
    ):
        # Everything the task instance did, as recorded in the metadata DB: besides execute() it
        # renders the input (a template field), stores it as rendered fields and pushes the
        # results to XCom, all of which Airflow does per element.
        items = data["items"][task_id]
        durations = tuple(run["ti_durations"][task_id][0] for run in data["iterate"])
        timing = Timing(items, durations)
        rows.append(
            Row(f"{task_id}_ti", "Real task instance", label, items, timing.best_us, timing.median_us)
        )
    marginal = expand_marginal_seconds(data)
    rows.append(
        Row(
            "expand_per_ti",
            "Real task instance",
            f".expand() to {data['expand_tis']} mapped TIs, added dag.test() wall per mapped TI",
            data["expand_tis"],
            min(marginal) * 1e6,
            statistics.median(marginal) * 1e6,
        )
    )
    return rows


def expand_marginal_seconds(data: dict[str, Any]) -> list[float]:
    """Per repetition: (wall with M mapped TIs - wall with 1) / (M - 1)."""
    m = data["expand_tis"]
    return [
        (many["wall"] - one["wall"]) / (m - 1)
        for one, many in zip(data["expand_1"], data["expand_m"], strict=True)
    ]


def ratios(rows: list[Row]) -> list[Ratio]:
    best = {row.key: row.best_us for row in rows}
    found: list[Ratio] = []

    def vs_floor(key: str, floor: str, label: str) -> None:
        value = best[key] / best[floor]
        found.append(Ratio(f"{label} / raw floor", value, "≤ 1.5x", value <= 1.5))

    vs_floor("core_async", "floor_async", "Core async")
    vs_floor("core_async_yield", "floor_async_yield", "Core async, item awaits sleep(0)")
    vs_floor("core_sync", "floor_sync", "Core threads")
    vs_floor("layer_async", "floor_async", "Airflow layer async")
    vs_floor("layer_sync", "floor_sync", "Airflow layer sync")
    vs_floor("iterate_async", "floor_async", "dag.test() .iterate() async")
    vs_floor("iterate_sync", "floor_sync", "dag.test() .iterate() sync")
    for engine, label in (("async", "async"), ("sync", "threads")):
        for feature, named in (("ledger", "labels + item ledger"), ("timeout", "item_timeout")):
            value = best[f"core_{engine}_{feature}"] / best[f"core_{engine}"]
            found.append(Ratio(f"Core {label}: with {named} / no-op", value, "-", None))
    layer_context = best["layer_async_context"] / best["layer_async"]
    found.append(Ratio("Airflow layer async: noop(x, **context) / noop(x)", layer_context, "-", None))
    for key, label in (
        ("iterate_async", "async"),
        ("iterate_sync", "sync"),
        ("iterate_async_ti", "async (whole TI)"),
        ("iterate_sync_ti", "sync (whole TI)"),
    ):
        value = best["expand_per_ti"] / best[key]
        found.append(
            Ratio(
                f".expand() per mapped TI / dag.test() .iterate() {label} per item",
                value,
                "≥ 1000x",
                value >= 1000,
            )
        )
    return found


# Both wordings IterateOperator has used: "Iterate finished: 1000 succeeded, 0 failed, 1000 started,
# 0.05s (...)" and "Iterate finished: 1,000 / 1,000 done, 0 failed, ..., in 0.05s".
_FINISHED = re.compile(r"Iterate finished: ([\d,]+)\D.*?(?:started, |in )([\d.]+)s")


def logged_iterate_seconds(log: Path) -> dict[int, list[float]]:
    """Elapsed times IterateOperator logged ("Iterate finished ... 0.05s"), by item count."""
    found: dict[int, list[float]] = {}
    for match in _FINISHED.finditer(log.read_text(errors="replace")):
        found.setdefault(int(match.group(1).replace(",", "")), []).append(float(match.group(2)))
    return found
