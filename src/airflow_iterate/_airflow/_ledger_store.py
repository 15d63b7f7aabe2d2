"""Where an iterated task writes its item ledger, so the API server can read it while it runs.

Airflow 3.3+: the task instance's state store, under ``airflow_iterate/ledger`` (and
``airflow_iterate/ledger/failed/<n>``), readable through the public REST API
(``GET .../taskInstances/{task_id}/state-store/airflow_iterate/ledger?map_index=-1``) and kept
after the run ends. Older Airflow: XComs written during the run (``iterate_ledger``,
``iterate_ledger_failed_<n>``), readable through the XCom endpoints until the task runs again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._core import ItemFailure, Ledger, RecordedItemError, RunStatistics

__all__ = ["LEDGER_STATE_PREFIX", "LEDGER_XCOM_PREFIX", "open_ledger", "write_gathered_ledger"]

#: chunks listed in a gather's ledger (all are counted); Airflow's default max_map_length is 1,024
MAX_LISTED_CHUNKS = 500

LEDGER_STATE_PREFIX = "airflow_iterate/"
LEDGER_XCOM_PREFIX = "iterate_"


class _StateStoreLedger:
    def __init__(self, store: Any) -> None:
        self._store = store

    def put(self, name: str, value: Any) -> None:
        self._store.set(LEDGER_STATE_PREFIX + name, value)


class _XComLedger:
    def __init__(self, ti: Any) -> None:
        self._ti = ti

    def put(self, name: str, value: Any) -> None:
        self._ti.xcom_push(key=LEDGER_XCOM_PREFIX + name.replace("/", "_"), value=value)


def open_ledger(context: Mapping[str, Any], **about: Any) -> Ledger:
    """The ledger of this task instance; ``about`` goes into every document with its identity."""
    ti = context["ti"]
    store = context.get("task_state_store")
    target = _StateStoreLedger(store) if store is not None else _XComLedger(ti)
    identity = {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None),
    }
    return Ledger(target, about={**identity, **about})


def write_gathered_ledger(
    context: Mapping[str, Any],
    *,
    state: str,
    chunk_summaries: Sequence[Mapping[str, Any]],
    planned: Sequence[Mapping[str, int]],
    failures: Sequence[Mapping[str, Any]],
) -> None:
    """The whole input's ledger, on the gather task: the chunks' counts summed, one row per chunk."""

    def total(key: str) -> int:
        return sum(int(summary.get(key) or 0) for summary in chunk_summaries)

    stats = RunStatistics(
        concurrency=max((int(s.get("concurrency") or 0) for s in chunk_summaries), default=0),
        total=sum(chunk["stop"] - chunk["start"] for chunk in planned),
        started=total("started"),
        succeeded=total("succeeded"),
        failed=total("failed"),
        resumed=total("resumed"),
        retried=total("retried"),
        in_flight=0,
        peak_in_flight=0,
        elapsed=max((float(s.get("elapsed") or 0.0) for s in chunk_summaries), default=0.0),
    )
    rows = [
        [map_index, chunk["start"], chunk["stop"], int(s.get("succeeded") or 0), int(s.get("failed") or 0)]
        for map_index, (chunk, s) in enumerate(zip(planned, chunk_summaries, strict=False))
    ]
    recorded = [
        ItemFailure(f["index"], str(f["input"]), RecordedItemError(f["error"]), str(f["error"]))
        for f in sorted(failures, key=lambda f: f["index"])
    ]
    ledger = open_ledger(
        context,
        chunks={
            "columns": ["map_index", "start", "stop", "succeeded", "failed"],
            "rows": rows[:MAX_LISTED_CHUNKS],
            "count": len(planned),
        },
    )
    ledger.write(
        stats,
        state=state,
        offset=0,
        pulled=stats.total or 0,
        running=[],
        failures=recorded,
    )
