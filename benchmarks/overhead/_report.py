"""The markdown report and the bar chart."""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks._markdown import facts, table

from ._config import ASYNC_CONCURRENCY
from ._results import Ratio, Row, expand_marginal_seconds

_GROUP_COLORS = {
    "Raw floor": "#9e9e9e",
    "Core": "#1f77b4",
    "Airflow layer": "#2ca02c",
    "Real task instance": "#d62728",
}


def _us(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def markdown(
    *,
    machine: dict[str, str],
    run_info: dict[str, str],
    rows: list[Row],
    found_ratios: list[Ratio],
    memory: list[dict[str, Any]],
    dagrun: dict[str, Any],
    logged: dict[int, list[float]],
    repeats: int,
) -> str:
    lines = ["# Per-item overhead of `.iterate()`", ""]
    lines += facts({**machine, **run_info})
    lines += [
        "",
        "## Per-item cost of no-op items",
        "",
        f"Wall time of a whole run divided by its N items. In-process cases: best of {repeats} runs "
        "(the median shows the spread), cases interleaved round-robin after one untimed warm-up run "
        f"each. dag.test() rows: best of {len(dagrun['iterate'])} DAG runs; the `.expand()` row is "
        f"best of {len(dagrun['expand_m'])} pairs of runs.",
        "",
    ]
    lines += table(
        ["Layer", "Case", "N", "best µs/item", "median µs/item"],
        [[r.group, r.label, f"{r.items:,}", _us(r.best_us), _us(r.median_us)] for r in rows],
        "llrrr",
    )
    lines += ["", "## Ratios (this run, best times)", ""]
    lines += table(
        ["Ratio", "Value", "Target", "Met"],
        [
            [r.label, f"{r.value:,.2f}x", r.target, "-" if r.met is None else ("yes" if r.met else "**no**")]
            for r in found_ratios
        ],
        "lrll",
    )
    lines += ["", "## Memory of one async run of no-op items", ""]
    lines += [
        "Each engine in a fresh interpreter importing the same modules. The input list exists before "
        "the baseline (*before*); *after* is taken while the results are still referenced. *Peak* is "
        "ru_maxrss after the run, with the peak reset to the current RSS just before it, so the "
        "import-time peak does not mask the run's; VmHWM is the kernel's peak for the same "
        "interval from /proc/self/status, as a cross-check.",
        "",
    ]
    lines += table(
        [
            "Engine",
            "N",
            "wall s",
            "RSS before MiB",
            "RSS after MiB",
            "peak RSS MiB",
            "VmHWM MiB",
            "peak - before MiB",
            "bytes/item",
        ],
        [_memory_row(m) for m in memory],
        "lrrrrrrrr",
    )
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in _notes(dagrun, logged, memory)]
    return "\n".join(lines) + "\n"


def _memory_row(m: dict[str, Any]) -> list[str]:
    engine = (
        f"ItemRunner async ({ASYNC_CONCURRENCY})"
        if m["engine"] == "runner"
        else (f"asyncio.gather + Semaphore({ASYNC_CONCURRENCY})")
    )
    peak = _mib(m["peak_rss"])
    if not m["peak_reset"]:
        # Without the reset the peak may be the one Airflow's import left behind.
        peak += f" (no reset; import peak {_mib(m['peak_rss_before'])})"
    # The kernel refreshes its peak counters lazily, so either may lag the other (or the RSS read
    # just before it) by a few pages; the largest of them is the peak.
    growth = max(m["peak_rss"], m["vm_hwm"] or 0, m["rss_after"]) - m["rss_before"]
    return [
        engine,
        f"{m['items']:,}",
        f"{m['seconds']:.2f}",
        _mib(m["rss_before"]),
        _mib(m["rss_after"]),
        peak,
        "-" if m["vm_hwm"] is None else _mib(m["vm_hwm"]),
        _mib(growth),
        f"{growth / m['items']:,.0f}",
    ]


def _notes(dagrun: dict[str, Any], logged: dict[int, list[float]], memory: list[dict[str, Any]]) -> list[str]:
    notes = []
    for task_id, items in dagrun["items"].items():
        execute = min(dagrun["execute_seconds"][task_id])
        ti = min(run["ti_durations"][task_id][0] for run in dagrun["iterate"])
        line = logged.get(items)
        logged_text = (
            f"the run itself as its log line reports it: {min(line):.2f} s" if line else "no log line found"
        )
        notes.append(
            f"`{task_id}` ({items:,} items): execute() best {execute:.3f} s ({logged_text}, 10 ms "
            f"resolution); the whole task instance took {ti:.3f} s by its recorded duration."
        )
    m = dagrun["expand_tis"]
    per_ti = [d for run in dagrun["expand_m"] for d in run["ti_durations"]]
    walls_m = [run["wall"] for run in dagrun["expand_m"]]
    walls_1 = [run["wall"] for run in dagrun["expand_1"]]
    notes.append(
        f"`.expand()`: dag.test() wall {min(walls_1):.2f} s for 1 mapped TI and {min(walls_m):.2f} s for "
        f"{m}; the difference over {m - 1} is the cost of a mapped TI including scheduling "
        f"({_us(min(expand_marginal_seconds(dagrun)) * 1e6)} µs). Recorded TI durations alone average "
        f"{statistics.mean(per_ti) * 1e3:.1f} ms. On a real deployment each mapped TI also waits for a "
        "scheduler loop and an executor slot, so this is a lower bound."
    )
    engines = {"runner": "ItemRunner", "gather": "asyncio.gather"}
    per_item = ", ".join(f"{engines[m['engine']]} {_us(m['seconds'] / m['items'] * 1e6)}" for m in memory)
    notes.append(
        f"The memory runs ({memory[0]['items']:,} items, one run each) also give µs/item: {per_item}. "
        "asyncio.gather keeps a Task per item alive until the end, and the garbage collector's full "
        "passes walk all of them (and everything Airflow's import left on the heap), so its per-item "
        "cost grows with N; with the collector disabled that growth disappears (checked separately). "
        "ItemRunner keeps only the results, so its per-item cost stays flat."
    )
    notes.append(
        "A no-op coroutine never suspends, so `await item` inside an ItemRunner worker completes "
        "without a trip through the event loop (peak 1 in flight), while asyncio.gather pays for "
        "one Task per item. The `sleep(0)` rows force one loop trip per item, as any real I/O does."
    )
    return notes


def chart(rows: list[Row], path: Path, title: str) -> None:
    # Airflow has routed stdlib logging to its console handler by now; keep the font-cache messages
    # matplotlib emits on first use out of the output.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")  # no display on CI machines and servers
    import matplotlib.pyplot as plt  # only after use(): pyplot fixes the backend when it loads

    ordered = list(reversed(rows))  # barh draws bottom-up; keep the table's top-down order
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(rows) + 1.6))
    bars = ax.barh(
        [r.label for r in ordered],
        [r.best_us for r in ordered],
        color=[_GROUP_COLORS.get(r.group, "#7f7f7f") for r in ordered],
    )
    ax.set_xscale("log")
    ax.set_xlabel("µs per item, per mapped TI for .expand() (best run, log scale)")
    ax.set_title(title, fontsize=10)
    for bar, row in zip(bars, ordered, strict=True):
        ax.text(
            bar.get_width() * 1.08,
            bar.get_y() + bar.get_height() / 2,
            _us(row.best_us),
            va="center",
            fontsize=8,
        )
    ax.set_xlim(right=max(r.best_us for r in rows) * 8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _GROUP_COLORS.values()]
    ax.legend(handles, list(_GROUP_COLORS), loc="upper right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
