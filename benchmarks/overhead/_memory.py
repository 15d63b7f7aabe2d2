"""Subprocess entry point: memory of one large async run of no-op items.

Run in a fresh interpreter per engine because ru_maxrss only ever grows: a peak left by an earlier
measurement would hide this one. Importing Airflow alone peaks higher than a small run, so the peak
is also reset (Linux ``clear_refs``) right before the run, when the kernel allows it.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import time
from pathlib import Path

import psutil

# Imported for both engines so that both start from the same baseline RSS.
from airflow_iterate._core import ItemRunner, RunOptions

from ._config import ASYNC_CONCURRENCY
from ._micro import gather_floor, noop


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _vm_hwm() -> int | None:
    """The kernel's peak RSS of this address space alone; ru_maxrss also carries the peak of the
    process that spawned this one (inherited at exec), which this does not."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["runner", "gather"])
    parser.add_argument("items", type=int)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()

    # The input list exists before the baseline, as it does in a task: XCom or the DAG file made it.
    items = list(range(args.items))
    gc.collect()
    before = _rss()
    peak_before = _peak_rss()
    peak_reset = _reset_peak_rss()
    start = time.perf_counter()
    if args.engine == "runner":
        runner: ItemRunner[int, int] = ItemRunner(
            lambda _index, item: noop(item), RunOptions(concurrency=ASYNC_CONCURRENCY), is_async=True
        )
        results = runner.run(items)
    else:
        results = gather_floor(noop, items)
    seconds = time.perf_counter() - start
    # Measured while the results are still referenced: they are part of what a run costs.
    after = _rss()
    peak = _peak_rss()
    hwm = _vm_hwm()
    if len(results) != args.items:
        raise RuntimeError(f"{args.engine} produced {len(results)} results, expected {args.items}")
    args.json_out.write_text(
        json.dumps(
            {
                "engine": args.engine,
                "items": args.items,
                "seconds": seconds,
                "rss_before": before,
                "rss_after": after,
                "peak_rss": peak,
                "peak_rss_before": peak_before,
                "vm_hwm": hwm,
                "peak_reset": peak_reset,
            }
        )
    )


if __name__ == "__main__":
    main()
