"""The markdown report and the chart."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks._markdown import facts, table
from benchmarks._measured import DISTURBED_MIN_SECONDS, DISTURBED_SHARE, by_key
from benchmarks.sftp._report import duration

from ._config import FEWER_CONNECTIONS
from ._postgres import KEY_TABLES, DbLoad
from ._results import DB_ROWS, Measurement, best_raw, targets

LINK_TITLES = {"proxy": "{rtt:g} ms RTT (through the delay proxy)", "direct": "~0 ms RTT (direct, no proxy)"}
#: the columns of the DB table: the tables the issue names
DB_TABLES = ("trigger", "task_instance", "xcom", "task_state_store")


def _ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def _count(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _label(row: Measurement) -> str:
    failed = f" ({row.error.split(',')[0]})" if row.error and not row.key.startswith("pages_") else ""
    return row.label + failed + (" †" if row.disturbed else "")


def _when(row: Measurement) -> str:
    return duration(row.job_seconds) + (" (extrapolated)" if row.extrapolated else "")


def calls_rows(rows: list[Measurement], link: str) -> list[Measurement]:
    """The detail-call rows on a link, in the table's order (1, 2, 3, 4, 5, 6); row 5's run in the
    deployment is only in the DB table (its DAG run's time is mostly the scheduling around it)."""
    found = [r for r in rows if r.link == link and not r.key.startswith("pages_")]
    return sorted([r for r in found if r.key != "iterate_deployment"], key=lambda r: r.number)


def short_error(error: str) -> str:
    """The exception's type and first sentence."""
    return error.split(". ", 1)[0].rstrip(".") + "."


def resultstable(rows: list[Measurement], link: str) -> list[str]:
    found = by_key(rows, link)
    deferrable = found.get("deferrable")
    raw = best_raw(found) if any(k.startswith("raw_") for k in found) else None
    lines = []
    for row in calls_rows(rows, link):
        lines.append(
            [
                row.number,
                _label(row),
                f"{row.calls:,}",
                f"{row.wall:,.1f}",
                f"{row.calls_per_second:,.1f}",
                _when(row),
                f"{row.cpu:,.1f}",
                f"{row.cpu_ms_per_call:,.2f}",
                f"{row.peak_rss / 2**20:,.0f}",
                f"{row.server_cpu:,.1f}",
                _ratio(row.calls_per_second / deferrable.calls_per_second) if deferrable else "-",
                _ratio(row.calls_per_second / raw.calls_per_second) if raw else "-",
            ]
        )
    header = [
        "#",
        "approach",
        "calls",
        "wall s",
        "calls/s",
        f"{rows[0].job if rows else 0:,} calls",
        "CPU s",
        "CPU ms/call",
        "peak RSS MiB",
        "server CPU s",
        "vs (2)",
        "vs (6)",
    ]
    return table(header, lines, "llrrrlrrrrrr")


def targetstable(rows: list[Measurement], link: str) -> list[str]:
    found = by_key(rows, link)
    deployment = by_key(rows, "proxy")
    lines = []
    for target in targets(found, deployment):
        met = "yes" if target.met else "**no**"
        value = f"{target.value:,.0f}x" if target.value >= 100 else f"{target.value:.2f}x"
        lines.append([target.label, value, f"≥ {target.wanted:g}x", met])
    return table(["target for (5) at its defaults", "measured", "wanted", "met"], lines, "lrll")


def task_instance_share(rows: list[Measurement], link: str) -> list[str]:
    """How the gap between (5) and the raw client splits: the task instance around the calls,
    and what .iterate() and the client add inside it."""
    found = by_key(rows, link)
    ours, in_task, raw = found.get("iterate"), found.get("task_raw_aiohttp"), found.get("raw_aiohttp")
    if ours is None or in_task is None or raw is None:
        return []
    return [
        "",
        f"Where the gap to raw aiohttp lies (not targets): the same raw aiohttp code inside one task "
        f"instance reads {in_task.calls_per_second / raw.calls_per_second:.2f}x raw aiohttp without "
        f"Airflow (the task instance's own cost: its start, its end, a larger process), and (5) reads "
        f"{ours.calls_per_second / in_task.calls_per_second:.2f}x that row (what `.iterate()` and "
        f"`airflow_iterate.http` add: {ours.cpu_ms_per_call:.2f} against "
        f"{in_task.cpu_ms_per_call:.2f} ms of CPU per call).",
    ]


def _table_cell(load: DbLoad, name: str) -> str:
    counts = load.tables.get(name, {})
    inserted, updated = counts.get("inserted", 0.0), counts.get("updated", 0.0)
    if not inserted and not updated:
        return "0"
    return f"{_count(inserted)} / {_count(updated)}"


def dbtable(rows: list[Measurement]) -> list[str]:
    found = {r.key: r for r in rows if r.db is not None}
    lines = []
    for key in DB_ROWS:
        row = found.get(key)
        if row is None:
            continue
        per = row.db_per_1000()
        assert per is not None
        dag_run = row.details.get("dag_run_seconds")
        lines.append(
            [
                row.number,
                _label(row)
                if key != "iterate"
                else "the same in `dag.test()` (row 5 above), its own process",
                f"{row.calls:,}",
                f"{dag_run:,.1f}" if dag_run is not None else "-",
                _count(per.transactions),
                _count(per.inserted),
                _count(per.updated),
                _count(per.written),
                f"{per.wal_bytes / 1e6:,.2f}",
                *(_table_cell(per, name) for name in DB_TABLES),
                f"{row.db_cpu * 1000 / row.calls:,.2f}",
            ]
        )
    header = [
        "#",
        "approach",
        "calls",
        "DAG run s",
        "transactions",
        "rows inserted",
        "rows updated",
        "rows written",
        "WAL MB",
        *(f"`{name}` ins / upd" for name in DB_TABLES),
        "PostgreSQL CPU s",
    ]
    return table(header, lines, "llrrrrrrr" + "r" * len(DB_TABLES) + "r")


def pagestable(rows: list[Measurement]) -> list[str]:
    lines = []
    for row in [r for r in rows if r.key.startswith("pages_")]:
        load = row.db_load()
        where = " on page 2" if row.key == "pages_deferrable" else ""
        result = f"**fails**{where}: `{short_error(row.error)}`" if row.error else "ok"
        lines.append(
            [
                row.number,
                _label(row),
                f"{row.calls:,}" if not row.error else f"{row.calls:,} asked",
                f"{row.wall:,.1f}",
                f"{row.calls_per_second:,.2f}" if not row.error else "-",
                _when(row) if not row.error else "-",
                f"{row.cpu:,.1f}",
                _count(load.transactions) if load else "-",
                _count(load.written) if load else "-",
                f"{load.wal_bytes / 1e6:,.2f}" if load else "-",
                result,
            ]
        )
    header = [
        "#",
        "approach",
        "pages",
        "DAG run s",
        "pages/s",
        "1,000 pages",
        "deployment CPU s",
        "DB transactions",
        "DB rows written",
        "WAL MB",
        "result",
    ]
    return table(header, lines, "llrrrlrrrrl")


def markdown(
    *,
    machine: dict[str, str],
    run_info: dict[str, str],
    rows: list[Measurement],
    links: list[tuple[str, float]],
    deployment: dict[str, Any],
    notes: list[str],
) -> str:
    lines = ["# HTTP: 10,000 detail GETs and a 1,000-page listing, the proposal's approaches", ""]
    lines += facts({**machine, **run_info})
    for name, rtt in links:
        title = LINK_TITLES[name].format(rtt=rtt)
        if not calls_rows(rows, name):
            continue
        lines += ["", f"## Detail calls, {title}", ""]
        lines += resultstable(rows, name)
        lines += ["", f"Targets, {title}:", ""]
        lines += targetstable(rows, name)
        lines += task_instance_share(rows, name)
    if any(r.db is not None for r in rows):
        lines += ["", "## The metadata DB's load, per 1,000 calls", ""]
        lines += dbtable(rows)
        idle = deployment.get("idle")
        if idle:
            load = DbLoad.from_dict(idle)
            lines += [
                "",
                f"The idle deployment, watched for {load.seconds:.0f} s before the rows: "
                f"{load.transactions / load.seconds:.1f} transactions/s, {load.written / load.seconds:.2f} "
                f"rows written/s, {load.wal_bytes / load.seconds / 1e3:.1f} KB of WAL/s; taken off the rows' "
                "windows only outside the runs (see the notes).",
            ]
    if any(r.key.startswith("pages_") for r in rows):
        lines += ["", "## A paginated listing (page-number pagination, 10 records a page)", ""]
        lines += pagestable(rows)
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in notes]
    lines += [
        f"- † marks a row during which other processes on the machine used more than "
        f"{DISTURBED_SHARE:.0%} of a core (and {DISTURBED_MIN_SECONDS:g} CPU s); a short one was measured "
        "again, and the least disturbed attempt is shown. `other_cpu` in http.json has the numbers."
    ]
    return "\n".join(lines) + "\n"


_CHART_LABELS = {
    "expand": "mapped HttpOperator",
    "deferrable": "mapped HttpOperator, deferrable",
    "hook_sync": "HttpHook loop",
    "hook_async_per_call": "HttpAsyncHook.run(), session per call",
    "hook_async_session": "HttpAsyncHook.session(), shared",
    "iterate": ".iterate() + airflow_iterate.http (dag.test())",
    "iterate_fewer_connections": f".iterate(), {FEWER_CONNECTIONS} connections per host",
    "iterate_deployment": ".iterate(), in the deployment",
    "task_raw_aiohttp": "raw aiohttp in one task instance",
    "raw_httpx": "raw httpx",
    "raw_aiohttp": "raw aiohttp",
}


def chart(rows: list[Measurement], path: Path, title: str) -> None:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")  # no display on CI machines and servers
    import matplotlib.pyplot as plt  # only after use(): pyplot fixes the backend when it loads

    timed = calls_rows(rows, "proxy") or calls_rows(rows, "direct")
    loaded = [r for key in DB_ROWS for r in rows if r.key == key and r.db is not None]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, 0.45 * max(len(timed), 4) + 1.8), gridspec_kw={"width_ratios": [3, 2]}
    )
    labels = [f"({r.number}) {_CHART_LABELS.get(r.key, r.key)}" for r in timed]
    ys = list(range(len(timed)))[::-1]
    bars = left.barh(ys, [r.job_seconds for r in timed], color="#1f77b4")
    for bar, row in zip(bars, timed, strict=True):
        if row.extrapolated:
            bar.set_hatch("//")
        left.text(
            bar.get_width() * 1.08, bar.get_y() + bar.get_height() / 2, _when(row), va="center", fontsize=7
        )
    left.set_yticks(ys, labels, fontsize=8)
    left.set_xscale("log")
    job = timed[0].job if timed else 0
    left.set_xlabel(f"time for {job:,} calls (log; hatched: extrapolated from a subset)")
    if timed:
        left.set_xlim(min(r.job_seconds for r in timed) / 2, max(r.job_seconds for r in timed) * 10)
    if loaded:
        per = [r.db_per_1000() for r in loaded]
        names = [f"({r.number}) {_CHART_LABELS.get(r.key, r.key)}" for r in loaded]
        yl = list(range(len(loaded)))[::-1]
        written = [max(p.written, 0.1) if p else 0.1 for p in per]
        rbars = right.barh(yl, written, color="#d62728")
        for bar, value in zip(rbars, per, strict=True):
            text = (
                f"{value.written:,.0f}"
                if value and value.written >= 1
                else f"{value.written:.2f}"
                if value
                else ""
            )
            right.text(
                bar.get_width() * 1.1, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=7
            )
        right.set_yticks(yl, names, fontsize=8)
        right.set_xscale("log")
        right.set_xlim(0.05, max(written) * 20)
        right.set_xlabel("DB rows written per 1,000 calls (log)")
    else:
        right.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["KEY_TABLES", "chart", "markdown"]
