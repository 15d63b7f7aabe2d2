"""Asking for a rerun of a task instance's failed items through Airflow's public REST API.

Two requests, as the Items tab's button makes them: put the request in the task instance's state
store (:data:`~._rerun.RERUN_REQUEST_KEY`), then clear the task instance (and what runs after
it, so the complete result flows on). Needs Airflow 3.3+ (the task state store) and a user
allowed to edit the task instance.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from .._core import IterateError
from ._rerun import RERUN_REQUEST_KEY

__all__ = ["RerunRequestError", "request_rerun_of_failed_items"]


class RerunRequestError(IterateError):
    """The API refused or could not take the rerun request; the message says which step and why."""


def request_rerun_of_failed_items(
    api_url: str,
    dag_id: str,
    run_id: str,
    task_id: str,
    *,
    map_index: int = -1,
    token: str,
    include_downstream: bool = True,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Make the next run of a task instance rerun only its failed items, and clear it to start it.

    ``api_url`` is the API server's base URL (``[api] base_url``, e.g. ``http://127.0.0.1:8080``);
    ``token`` a JWT for it (``POST /auth/token``). Returns the clear request's answer.
    """
    import httpx  # Airflow's own dependency; only this command needs it

    base = api_url.rstrip("/")
    instance = (
        f"{base}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        f"/taskInstances/{quote(task_id, safe='')}"
    )
    headers = {"Authorization": f"Bearer {token}"}
    requested = {"requested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    with httpx.Client(headers=headers, timeout=timeout) as client:
        response = client.put(
            f"{instance}/state-store/{RERUN_REQUEST_KEY}",
            params={"map_index": map_index},
            json={"value": requested, "expires_at": None},
        )
        _require(response, 204, f"putting the request into {task_id}'s task state store")
        response = client.post(
            f"{base}/api/v2/dags/{quote(dag_id, safe='')}/clearTaskInstances",
            json={
                "dry_run": False,
                "only_failed": False,
                "dag_run_id": run_id,
                "task_ids": [task_id if map_index < 0 else [task_id, map_index]],
                "include_downstream": include_downstream,
                "reset_dag_runs": True,
            },
        )
        _require(response, 200, f"clearing {task_id}")
        answer: dict[str, Any] = response.json()
        return answer


def _require(response: Any, status: int, step: str) -> None:
    if response.status_code == status:
        return
    hint = {
        401: "the token is missing or expired: get one with POST /auth/token",
        403: "this user may not edit the task instance",
        404: "no such DAG, run or task instance (or the task state store needs Airflow 3.3+)",
    }.get(response.status_code, "")
    detail = response.text[:300]
    raise RerunRequestError(
        f"{step} failed: HTTP {response.status_code} {detail}" + (f" ({hint})" if hint else "")
    )
