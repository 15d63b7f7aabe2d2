"""From the runs' raw counts to one summary per case, the ratios and the writes per interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LEDGER_PREFIX = "airflow_iterate/ledger"
CHECKPOINT_PREFIX = "airflow_iterate/v1/"


def _kind(key: str | None) -> str:
    if key is None:
        return "other"
    if key == LEDGER_PREFIX or key.startswith(LEDGER_PREFIX + "/"):
        return "ledger"
    if key.startswith(CHECKPOINT_PREFIX):
        return "checkpoint"
    return "other"


@dataclass(frozen=True)
class Intervals:
    """The state-store writes of a run that lasted several progress intervals."""

    progress_interval: float
    run_seconds: float
    #: when execute() started, in seconds since the DAG run started (the timeline's origin)
    execute_started: float
    #: writes before the run's final ledger write, by kind (ledger, checkpoint)
    running: dict[str, int]
    #: the final ledger write and what follows it (the checkpoint's deletion)
    at_end: dict[str, int]
    #: seconds since the DAG run started of each state-store write, with its kind and verb
    timeline: list[tuple[float, str, str]]

    @property
    def intervals(self) -> float:
        return self.run_seconds / self.progress_interval

    @property
    def total(self) -> int:
        return sum(self.running.values()) + sum(self.at_end.values())

    def per_interval(self, writes: float) -> float:
        return writes / self.intervals


@dataclass(frozen=True)
class Summary:
    key: str
    label: str
    items: int
    ledger: bool
    runs: int
    wall: float
    walls: list[float]
    execute: float | None
    ti_seconds: float
    task_instances: int
    xcom_rows: int
    state_rows: int
    state_writes: int
    xcom_writes: int
    all_writes: int
    value_bytes: int
    all_bytes: int
    tables: dict[str, dict[str, int]]
    rows_added: dict[str, int]
    own_counts: dict[str, int]
    counts_vary: bool
    intervals: Intervals | None

    @property
    def state_writes_by_db_and_own(self) -> tuple[int, int]:
        """The listener's count against the ledger's and the checkpoint's own (ledger on only)."""
        own = self.own_counts["checkpoint_writes"]
        if self.ledger:
            own += self.own_counts["ledger_writes"]
        return self.state_writes, own


def _statements(run: dict[str, Any], table: str) -> int:
    return int(run["writes"].get(table, {}).get("statements", 0))


def _counts(run: dict[str, Any]) -> tuple[Any, ...]:
    return (
        tuple(sorted(run["rows_added"].items())),
        tuple(sorted((t, w["statements"]) for t, w in run["writes"].items())),
    )


def _intervals(run: dict[str, Any]) -> Intervals | None:
    if run.get("progress_interval") is None or not run["execute_seconds"]:
        return None
    events = [e for e in run["events"] if e["table"] == "task_state_store"]
    kinds = [_kind(e["key"]) for e in events]
    last_ledger = max((i for i, kind in enumerate(kinds) if kind == "ledger"), default=len(events))
    running: dict[str, int] = {}
    at_end: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        bucket = running if i < last_ledger else at_end
        bucket[kind] = bucket.get(kind, 0) + 1
    return Intervals(
        progress_interval=float(run["progress_interval"]),
        run_seconds=float(run["execute_seconds"][0]),
        execute_started=float(run["execute_started"][0]),
        running=running,
        at_end=at_end,
        timeline=[(e["t"], kind, e["verb"]) for e, kind in zip(events, kinds, strict=True)],
    )


def summarize(data: dict[str, Any]) -> list[Summary]:
    summaries = []
    for case in data["cases"]:
        runs = [run for run in data["runs"] if run["key"] == case["key"]]
        best = min(runs, key=lambda run: run["wall"])
        writes = best["writes"]
        summaries.append(
            Summary(
                key=case["key"],
                label=case["label"],
                items=case["items"],
                ledger=case["ledger"],
                runs=len(runs),
                wall=best["wall"],
                walls=[run["wall"] for run in runs],
                execute=best["execute_seconds"][0] if best["execute_seconds"] else None,
                ti_seconds=sum(best["ti_durations"]),
                task_instances=best["rows_added"].get("task_instance", 0),
                xcom_rows=best["rows_added"].get("xcom", 0),
                state_rows=best["rows_added"].get("task_state_store", 0),
                state_writes=_statements(best, "task_state_store"),
                xcom_writes=_statements(best, "xcom"),
                all_writes=sum(w["statements"] for w in writes.values()),
                value_bytes=sum(
                    writes.get(t, {}).get("value_bytes", 0) for t in ("xcom", "task_state_store")
                ),
                all_bytes=sum(w["parameter_bytes"] for w in writes.values()),
                tables=writes,
                rows_added=best["rows_added"],
                own_counts=best["own_counts"],
                counts_vary=len({_counts(run) for run in runs}) > 1,
                intervals=_intervals(best),
            )
        )
    return summaries
