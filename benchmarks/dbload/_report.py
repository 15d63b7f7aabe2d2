"""The markdown report and the chart."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks._markdown import facts, table

from ._results import Intervals, Summary

LETTERS = {"ledger": "a", "no_ledger": "b", "floor": "c", "slow": "d", "expand": "e"}
#: tables shown first in the per-table detail; any other table written to follows
#: where a DAG's definition is kept; dag.test() writes to them only if the DAG changed
DAG_TABLES = ("dag", "serialized_dag", "dag_version", "dag_code", "dag_tag", "dag_bundle")
MAIN_TABLES = ("task_instance", "task_instance_history", "xcom", "task_state_store", "log", "dag_run")


def _name(s: Summary) -> str:
    return f"({LETTERS.get(s.key, '?')}) {s.label}"


def _int(value: float) -> str:
    return f"{value:,.0f}"


def _bytes(value: float) -> str:
    if value >= 2**20:
        return f"{value / 2**20:,.2f} MiB"
    if value >= 1024:
        return f"{value / 1024:,.1f} KiB"
    return f"{value:,.0f} B"


def _ratio(value: float) -> str:
    if value >= 10:
        return f"{value:,.0f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"{value:.2g}x"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _per_interval(s: Summary) -> str:
    if s.intervals is None:
        return "-"
    iv = s.intervals
    return f"{iv.per_interval(iv.total):.2f}"


def markdown(
    *,
    machine: dict[str, str],
    run_info: dict[str, str],
    summaries: list[Summary],
    defaults: dict[str, float],
) -> str:
    by_key = {s.key: s for s in summaries}
    expand = by_key["expand"]
    iterated = [s for s in summaries if s.key != "expand"]
    ledger, slow = by_key["ledger"], by_key["slow"]
    lines = ["# Metadata-database load of `.iterate()`, against `.expand()`", ""]
    lines += facts({**machine, **run_info})
    lines += ["", *_headline(ledger, by_key["floor"], slow, expand, defaults["progress_interval"]), ""]
    lines += ["## Per DAG run", ""]
    lines += [
        "Each case is one DAG run through `dag.test()` on a fresh metadata DB (SQLite), counted from "
        "the run's start to its end. *Rows* are rows added to the table by the run (present after it); "
        "*writes* are INSERT, UPDATE and DELETE statements sent to it; *value bytes* are the bytes of "
        "the XCom and state-store values written; *all bytes* are the text and binary parameters of "
        "every write to any table. *Per interval*: state-store writes / (run seconds / "
        "`progress_interval`), for the run that lasted several intervals.",
        "",
    ]
    lines += table(
        [
            "case",
            "items",
            "task instances",
            "XCom rows",
            "state-store rows",
            "state-store writes",
            "XCom writes",
            "writes, all tables",
            "value bytes",
            "all bytes",
            "state-store writes per interval",
            "wall s",
            "TI s",
        ],
        [
            [
                _name(s),
                _int(s.items),
                _int(s.task_instances),
                _int(s.xcom_rows),
                _int(s.state_rows),
                _int(s.state_writes),
                _int(s.xcom_writes),
                _int(s.all_writes),
                _bytes(s.value_bytes),
                _bytes(s.all_bytes),
                _per_interval(s),
                _s(s.wall),
                _s(s.ti_seconds),
            ]
            for s in summaries
        ],
        "lrrrrrrrrrrrr",
    )
    lines += [
        "",
        "*Wall s*: `dag.test()` from call to return. *TI s*: the task instances' recorded durations, "
        "summed over the mapped instances for `.expand()`.",
        "",
        f"## Against `.expand()` over {expand.items:,} items, same run",
        "",
        "Each iterated case divided by (e): per DAG run, and per item (each side divided by its own "
        "item count first).",
        "",
    ]
    lines += table(
        [
            "case",
            "items",
            "task instances",
            "XCom rows",
            "writes per run",
            "writes per item",
            "all bytes per run",
            "all bytes per item",
            "wall per run",
            "wall per item",
        ],
        [
            [
                _name(s),
                _ratio(s.items / expand.items),
                _ratio(s.task_instances / expand.task_instances),
                _ratio(s.xcom_rows / expand.xcom_rows),
                _ratio(s.all_writes / expand.all_writes),
                _ratio((s.all_writes / s.items) / (expand.all_writes / expand.items)),
                _ratio(s.all_bytes / expand.all_bytes),
                _ratio((s.all_bytes / s.items) / (expand.all_bytes / expand.items)),
                _ratio(s.wall / expand.wall),
                _ratio((s.wall / s.items) / (expand.wall / expand.items)),
            ]
            for s in iterated
        ],
        "lrrrrrrrrr",
    )
    if slow.intervals is not None:
        lines += ["", *_interval_section(slow, slow.intervals)]
    lines += ["", "## What each run wrote, table by table", ""]
    lines += [
        "Statements sent (INSERT / UPDATE / DELETE) and, in brackets, rows added to the table by the run.",
        "",
    ]
    lines += _per_table(summaries)
    lines += ["", "## Targets (reported, not asserted)", ""]
    lines += _targets(slow)
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in _notes(summaries, defaults)]
    return "\n".join(lines) + "\n"


def _headline(ledger: Summary, floor: Summary, slow: Summary, expand: Summary, progress: float) -> list[str]:
    extra_state = ledger.state_writes - floor.state_writes
    short = ledger.execute is not None and ledger.execute < progress
    text = (
        f"**{ledger.items:,} no-op items with `.iterate()` (defaults): {ledger.task_instances} task "
        f"instance, {ledger.all_writes:,} writes to the metadata DB ({ledger.state_writes} to the task "
        f"state store, {ledger.xcom_writes} to XCom), {_bytes(ledger.all_bytes)}; `.expand()` over "
        f"{expand.items:,} items: {expand.task_instances:,} task instances, {expand.all_writes:,} writes, "
        f"{_bytes(expand.all_bytes)}.** The ledger and the checkpoint add {extra_state} state-store "
        "write(s) to such a run"
        + (
            f" (its `execute()` took {ledger.execute:.2f} s, less than one {progress:g} s progress "
            "interval: only the ledger's final write)."
            if short and ledger.execute is not None
            else "."
        )
    )
    lines = [text]
    if slow.intervals is not None:
        iv = slow.intervals
        running = sum(iv.running.values())
        lines += [
            "",
            f"A run lasting {iv.intervals:.1f} progress intervals (d) wrote "
            f"{iv.per_interval(running):.2f} state-store writes per interval while running (ledger "
            f"{iv.per_interval(iv.running.get('ledger', 0)):.2f}, checkpoint "
            f"{iv.per_interval(iv.running.get('checkpoint', 0)):.2f}) and {sum(iv.at_end.values())} at "
            f"its end: {iv.per_interval(iv.total):.2f} per interval in all.",
        ]
    return lines


def _interval_section(s: Summary, iv: Intervals) -> list[str]:
    lines = [
        f"## Writes per progress interval: case (d), {s.items:,} items over {iv.run_seconds:.1f} s",
        "",
        f"`execute()` lasted {iv.run_seconds:.2f} s = {iv.intervals:.2f} progress intervals of "
        f"{iv.progress_interval:g} s. *While running*: every state-store write before the run's final "
        "ledger write; *at the end*: that write and what follows it (a successful run deletes its "
        "checkpoint, one DELETE per key).",
        "",
    ]
    rows = []
    for kind in ("ledger", "checkpoint", "other"):
        running, at_end = iv.running.get(kind, 0), iv.at_end.get(kind, 0)
        if kind == "other" and not running and not at_end:
            continue
        rows.append(
            [
                kind,
                _int(running),
                _int(at_end),
                _int(running + at_end),
                f"{iv.per_interval(running):.2f}",
                f"{iv.per_interval(running + at_end):.2f}",
            ]
        )
    running_all, end_all = sum(iv.running.values()), sum(iv.at_end.values())
    rows.append(
        [
            "**ledger + checkpoint**",
            _int(running_all),
            _int(end_all),
            _int(running_all + end_all),
            f"**{iv.per_interval(running_all):.2f}**",
            f"{iv.per_interval(running_all + end_all):.2f}",
        ]
    )
    lines += table(
        [
            "state-store writes",
            "while running",
            "at the end",
            "total",
            "per interval, running",
            "per interval, all",
        ],
        rows,
        "lrrrrr",
    )
    return lines


def _per_table(summaries: list[Summary]) -> list[str]:
    written = {t for s in summaries for t, w in s.tables.items() if w["statements"]}
    written |= {t for s in summaries for t, added in s.rows_added.items() if added}
    names = [t for t in MAIN_TABLES if t in written] + sorted(written - set(MAIN_TABLES))
    rows = []
    for name in names:
        row = [f"`{name}`"]
        for s in summaries:
            w = s.tables.get(name)
            added = s.rows_added.get(name, 0)
            if (w is None or not w["statements"]) and not added:
                row.append("-")
                continue
            sent = "0" if w is None else f"{w['inserts']:,} / {w['updates']:,} / {w['deletes']:,}"
            row.append(f"{sent} ({added:+,})")
        rows.append(row)
    rows.append(["all bytes", *[_bytes(s.all_bytes) for s in summaries]])
    return table(
        ["table", *[f"({LETTERS.get(s.key, '?')})" for s in summaries]], rows, "l" + "r" * len(summaries)
    )


def _targets(slow: Summary) -> list[str]:
    if slow.intervals is None:
        return ["- Case (d) did not run long enough to measure writes per interval."]
    iv = slow.intervals
    running = iv.per_interval(sum(iv.running.values()))
    ledger = iv.per_interval(iv.running.get("ledger", 0))
    met = "yes" if running <= 1.0 else "**no**"
    return [
        f"- Ledger + checkpoint writes ≤ 1 per `progress_interval` (case (d), while running, "
        f"`checkpoint_interval` = `progress_interval` = {iv.progress_interval:g} s): {running:.2f} — "
        f"{met}. The ledger alone: {ledger:.2f} per interval. The ledger and the checkpoint are "
        "separate keys written on separate timers of the run's monitor thread, so with equal "
        "intervals each writes about once per interval.",
        "- The per-item overhead within 10% of the version without the ledger is measured by "
        "`python -m benchmarks.overhead`, not here.",
    ]


def _notes(summaries: list[Summary], defaults: dict[str, float]) -> list[str]:
    by_key = {s.key: s for s in summaries}
    notes = [
        "The metadata DB is SQLite. The statements and rows are what Airflow sends through its ORM, "
        "the same on PostgreSQL and MySQL (the state store's upsert is one `INSERT ... ON CONFLICT` / "
        "`ON DUPLICATE KEY` statement on each); the times are not a production database's.",
        "Writes are counted by a SQLAlchemy `before_cursor_execute` / `after_cursor_execute` listener "
        "on the `Engine` class in the process that runs `dag.test()`. `dag.test()` runs each task "
        "instance in that process, and its execution-API calls (XComs, the task state store, state "
        "changes) go to an in-process API app on a thread of it, so the listener sees them. Checked "
        "against the writes the ledger and the checkpoint count themselves (listener / own): "
        + ", ".join(
            f"({LETTERS[s.key]}) {db} / {own}"
            for s in summaries
            if s.key != "expand"
            for db, own in [s.state_writes_by_db_and_own]
        )
        + ".",
        "State-store reads (SELECTs from `task_state_store`, not counted as writes): "
        + ", ".join(
            f"({LETTERS[s.key]}) {s.tables.get('task_state_store', {}).get('selects', 0)}" for s in summaries
        )
        + ": opening the checkpoint reads its first key, its finished-run marker and the rerun "
        "request.",
        "Ledger off, cases (b) and (c): the package has no option for it, so the benchmark's own "
        "subprocess replaces the operator's `open_ledger` with one returning a `Ledger` whose store "
        "drops every write. The documents are still built on their schedule, so (a) against (b) "
        "differs by the ledger's database writes only.",
        "An XCom push is a DELETE of the key and an INSERT (Airflow replaces the value); a state-store "
        "write is one upsert (an INSERT), a deletion one DELETE. The iterated task's XComs are its "
        "`return_value` (the list of all results: most of the value bytes) and `iterate_summary`. The "
        "`log` rows are Airflow's audit events, `running` and `success` per task instance.",
        "After a successful run the task state store keeps the ledger document (one row; failure pages "
        "would add one row per 50 failed items); the checkpoint deletes its keys, one statement each.",
        "The items are a literal list in the DAG, as in `benchmarks/overhead`; Airflow stores the "
        "rendered template field (truncated) in `rendered_task_instance_fields` for both `.iterate()` "
        "and each mapped `.expand()` instance.",
        "The DAGs are serialized before the runs; `dag.test()` syncs its DAG again, "
        + (
            "and its writes to the DAG tables are part of each run's count."
            if any(t in s.tables and s.tables[t]["statements"] for s in summaries for t in DAG_TABLES)
            else "and wrote nothing to the DAG tables (`dag`, `serialized_dag`, ...) in these runs."
        ),
        f"With the defaults (`checkpoint_interval` {defaults['checkpoint_interval']:g} s, "
        f"`progress_interval` {defaults['progress_interval']:g} s) the same timers (one monitor thread: "
        "a ledger write per progress interval, a checkpoint batch per checkpoint interval when items "
        "finished since the last) give 1 ledger + "
        f"{defaults['progress_interval'] / defaults['checkpoint_interval']:g} checkpoint writes per "
        "progress interval while a long run goes on, more if one batch exceeds 60,000 characters; "
        "derived from the code, not measured here.",
    ]
    if not any(
        "task_instance_history" in s.tables and s.tables["task_instance_history"]["statements"]
        for s in summaries
    ):
        notes.append(
            "`task_instance_history` got no rows: Airflow copies a task instance there when it is "
            "retried or cleared, and no task instance was."
        )
    timed = [s for s in summaries if s.runs > 1]
    if timed:
        notes.append(
            f"Cases {', '.join(f'({LETTERS[s.key]})' for s in timed)} ran {timed[0].runs} times each, in "
            "turns; the table shows the fastest run. All wall times (s): "
            + "; ".join(f"({LETTERS[s.key]}) " + ", ".join(f"{w:.2f}" for w in s.walls) for s in timed)
            + ". The others ran once. A warm-up DAG run (one plain task, one `.iterate()` over 1,000 "
            "items) went first: the first task instance of a process starts the in-process execution API."
        )
    varied = [s for s in summaries if s.counts_vary]
    notes.append(
        "Counts of the repeated runs: "
        + (
            "identical in every repeat."
            if not varied
            else "differed between repeats for " + ", ".join(f"({LETTERS[s.key]})" for s in varied) + "."
        )
    )
    floor = by_key.get("floor")
    if floor is not None and floor.execute is not None:
        notes.append(
            "`execute()` of the iterated task, best run: "
            + ", ".join(f"({LETTERS[s.key]}) {s.execute:.3f} s" for s in summaries if s.execute is not None)
            + "."
        )
    return notes


def chart(summaries: list[Summary], path: Path, title: str) -> None:
    # Airflow has routed stdlib logging to its console handler by now; keep matplotlib's font-cache
    # messages out of the output.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")  # no display on CI machines and servers
    import matplotlib.pyplot as plt  # only after use(): pyplot fixes the backend when it loads

    slow = next((s for s in summaries if s.key == "slow" and s.intervals is not None), None)
    fig, axes = plt.subplots(1, 2 if slow else 1, figsize=(13, 4.8), squeeze=False)
    ax = axes[0][0]
    labels = [f"({LETTERS[s.key]}) {s.items:,} items" for s in summaries]
    series = (
        ("all tables", [s.all_writes for s in summaries], "#7f7f7f"),
        ("XCom", [s.xcom_writes for s in summaries], "#2ca02c"),
        ("task state store", [s.state_writes for s in summaries], "#d62728"),
    )
    height = 0.26
    positions = range(len(summaries))
    for offset, (name, values, color) in enumerate(series):
        ys = [len(summaries) - 1 - p + (1 - offset) * height for p in positions]
        # a log scale has no room for 0: no bar, only the number
        ax.barh(ys, [v if v > 0 else float("nan") for v in values], height=height, color=color, label=name)
        for y, value in zip(ys, values, strict=True):
            ax.text(max(value, 0.75) * 1.1, y, f"{value:,}", va="center", fontsize=7)
    ax.set_yticks([len(summaries) - 1 - p for p in positions])
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.7, max(s.all_writes for s in summaries) * 12)
    ax.set_xlabel("writes (INSERT / UPDATE / DELETE statements) per DAG run, log scale")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(
        "Writes per DAG run: (a) ledger + checkpoint, (b) ledger off, (c) neither, (e) .expand()", fontsize=8
    )
    if slow is not None and slow.intervals is not None:
        _timeline(axes[0][1], slow.intervals)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _timeline(ax: Any, iv: Intervals) -> None:
    styles = {
        "ledger": {"color": "#1f77b4", "lw": 3.5, "alpha": 0.6},
        "checkpoint": {"color": "#ff7f0e", "lw": 1.5, "ls": "--"},
        "other": {"color": "#7f7f7f", "lw": 1.5, "ls": ":"},
    }
    start = iv.execute_started
    for kind, style in styles.items():
        times = [t - start for t, k, _ in iv.timeline if k == kind]
        if times:
            ax.step([0.0, *times], range(len(times) + 1), where="post", label=f"{kind} writes", **style)
    everything = [t - start for t, _, _ in iv.timeline]
    ax.step([0.0, *everything], range(len(everything) + 1), where="post", color="black", label="all")
    end = max([*everything, iv.run_seconds])
    ax.plot(
        [0, end], [0, end / iv.progress_interval], ls="-.", color="#9e9e9e", label="1 per progress interval"
    )
    ax.axvline(iv.run_seconds, color="#9e9e9e", lw=0.8, ls=":")
    ax.text(iv.run_seconds, 0.2, " execute() ends", fontsize=7, color="#555555", rotation=90, va="bottom")
    ax.set_xlabel("seconds since execute() started")
    ax.set_ylabel("state-store writes so far")
    ax.set_title(
        f"(d): {iv.run_seconds:.1f} s run, "
        f"progress_interval = checkpoint_interval = {iv.progress_interval:g} s",
        fontsize=8,
    )
    ax.legend(fontsize=8, loc="upper left")
