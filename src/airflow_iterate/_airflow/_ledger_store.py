"""Where an iterated task writes its item ledger, so the API server can read it while it runs.

Airflow 3.3+: the task instance's state store, under ``airflow_iterate/ledger`` (and
``airflow_iterate/ledger/failed/<n>``), readable through the public REST API
(``GET .../taskInstances/{task_id}/state-store/airflow_iterate/ledger?map_index=-1``) and kept
after the run ends. Older Airflow: XComs written during the run (``iterate_ledger``,
``iterate_ledger_failed_<n>``), readable through the XCom endpoints until the task runs again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._core import Ledger

__all__ = ["LEDGER_STATE_PREFIX", "LEDGER_XCOM_PREFIX", "open_ledger"]

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
