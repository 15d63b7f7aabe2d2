"""The Items tab's "Rerun failed items": the request that ``python -m airflow_iterate rerun-failed``
makes, made on the server as the caller.

The same two steps as the command (``airflow_iterate._airflow._rerun_request``): put
:data:`~._ledger.RERUN_REQUEST_KEY` into the task instance's state store, then clear the task
instance and its downstream tasks. Both go through the handlers of Airflow's own public REST API
(``PUT .../state-store/{key}``, ``POST /dags/{dag_id}/clearTaskInstances``), called in one
database session: if the clear is refused (a running task instance, a missing DAG), the request
is not stored either. The caller's right to edit the task instance is checked by the route, as the
REST API checks it. Airflow 3.3+ only (the task state store).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ._ledger import RERUN_REQUEST_KEY
from ._store import HAS_STATE_STORE, TaskInstanceKey

__all__ = ["RerunUnavailable", "rerun_failed_items", "unavailable_reason"]


class RerunUnavailable(Exception):
    """This Airflow cannot take the request (it has no task state store, or its API changed)."""


def unavailable_reason() -> str | None:
    """Why this Airflow cannot rerun only the failed items, or None if it can."""
    if not HAS_STATE_STORE:
        return (
            "Rerunning only the failed items needs Airflow 3.3 or later (the task state store keeps "
            "the results of the items that succeeded); on this Airflow, clear the task instance to "
            "run every item again."
        )
    try:
        _handlers()
    except ImportError as exc:
        return f"This Airflow's REST API differs from the one the Items tab knows ({exc})."
    return None


def _handlers() -> tuple[Any, ...]:
    from airflow._shared.state import TaskScope
    from airflow.api_fastapi.common.dagbag import create_dag_bag
    from airflow.api_fastapi.core_api.datamodels.task_instances import ClearTaskInstancesBody
    from airflow.api_fastapi.core_api.datamodels.task_state_store import TaskStateStoreBody
    from airflow.api_fastapi.core_api.routes.public.task_instances import post_clear_task_instances
    from airflow.api_fastapi.core_api.routes.public.task_state_store import set_task_state_store

    return (
        TaskScope,
        create_dag_bag,
        ClearTaskInstancesBody,
        TaskStateStoreBody,
        post_clear_task_instances,
        set_task_state_store,
    )


_dag_bag: Any = None


def rerun_failed_items(
    session: Any, key: TaskInstanceKey, user: Any, *, include_downstream: bool = True
) -> list[str]:
    """Make the next try of ``key`` rerun only its failed items, and clear it; returns what was
    cleared (``task_id[map_index]``). Raises Airflow's HTTPExceptions as its REST API would."""
    global _dag_bag
    reason = unavailable_reason()
    if reason is not None:
        raise RerunUnavailable(reason)
    (
        task_scope,
        create_dag_bag,
        clear_body,
        state_body,
        post_clear_task_instances,
        set_task_state_store,
    ) = _handlers()
    if _dag_bag is None:
        _dag_bag = create_dag_bag()
    requested = {
        "requested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "requested_by": str(user.get_name()),
        "from": "the Items tab",
    }
    scope = task_scope(dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, map_index=key.map_index)
    set_task_state_store(
        scope=scope,
        key=RERUN_REQUEST_KEY,
        body=state_body(value=requested, expires_at=None),
        session=session,
    )
    answer = post_clear_task_instances(
        dag_id=key.dag_id,
        dag_bag=_dag_bag,
        body=clear_body(
            dry_run=False,
            only_failed=False,
            dag_run_id=key.run_id,
            task_ids=[key.task_id if key.map_index < 0 else (key.task_id, key.map_index)],
            include_downstream=include_downstream,
            reset_dag_runs=True,
            prevent_running_task=True,
        ),
        session=session,
        user=user,
    )
    cleared = sorted(f"{ti.task_id}[{ti.map_index}]" for ti in getattr(answer, "task_instances", []))
    # The audit log, as the REST API's own routes write it (the event names the request).
    from airflow.models.log import Log

    session.add(
        Log(
            event="iterate_rerun_failed_items",
            owner=str(user.get_name()),
            extra=json.dumps({"cleared": cleared, "include_downstream": include_downstream}),
            dag_id=key.dag_id,
            run_id=key.run_id,
            task_id=key.task_id,
            map_index=key.map_index,
        )
    )
    return cleared
