"""The item ledger read through the public REST API while a task runs, and a rerun of failed items.

Airflow 3.3+ only: both go through the task state store's REST endpoints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ._deployment import AirflowDeployment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAILING = [n for n in range(10_000) if n % 270 == 13]


@pytest.fixture(autouse=True)
def _needs_the_task_state_store() -> None:
    pytest.importorskip("airflow.models.task_state_store", reason="the task state store is Airflow 3.3+")


def read_ledger(deployment: AirflowDeployment, dag_id: str, run_id: str, task_id: str) -> Any:
    response = deployment.api.http.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store/airflow_iterate/ledger",
        params={"map_index": -1},
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()["value"]


def test_the_ledger_is_readable_while_the_task_runs(airflow_deployment: AirflowDeployment) -> None:
    dag_id = "iterate_ledger_e2e"
    run_id = airflow_deployment.trigger(dag_id, "ledger")
    seen: list[dict[str, Any]] = []

    def grown() -> bool | None:
        doc = read_ledger(airflow_deployment, dag_id, run_id, "fetch")
        if (
            doc
            and doc["state"] == "running"
            and (not seen or doc["counts"]["done"] > seen[-1]["counts"]["done"])
        ):
            seen.append(doc)
        return True if len(seen) >= 3 else None

    airflow_deployment.wait_for("three growing ledger documents while the task runs", grown, 120)
    airflow_deployment.wait_for_run(dag_id, run_id, 120)
    final = read_ledger(airflow_deployment, dag_id, run_id, "fetch")

    done = [doc["counts"]["done"] for doc in seen]
    assert done == sorted(done) and done[0] < done[-1] < 2_000
    live = seen[-1]
    assert live["total"] == 2_000 and 0 < live["counts"]["in_flight"] <= 8
    assert all(item["label"].startswith("/in/") and item["attempt"] == 1 for item in live["in_flight"])
    assert live["done_ranges"][0][0] == 0 and live["eta_seconds"] is not None
    assert final["state"] == "success" and final["counts"]["succeeded"] == 2_000
    assert final["done_ranges"] == [[0, 2_000]] and final["in_flight"] == []
    assert final["try_number"] == 1 and final["dag_id"] == dag_id and final["run_id"] == run_id


def tries(home: Path) -> dict[int, Counter[int]]:
    """For each try, how many times each item ran."""
    per_try: dict[int, Counter[int]] = {}
    for line in (home / "rerun-effects" / "effects.log").read_text().splitlines():
        n, attempt = map(int, line.split())
        per_try.setdefault(attempt, Counter())[n] += 1
    return per_try


def test_rerun_failed_items_runs_exactly_those_and_a_plain_clear_runs_everything(
    airflow_deployment: AirflowDeployment,
) -> None:
    dag_id, task_id = "iterate_rerun_e2e", "work"
    home = airflow_deployment.home
    (home / "rerun-effects").mkdir(exist_ok=True)
    (home / "rerun-effects" / "broken").touch()
    run_id = airflow_deployment.trigger(dag_id, "rerun")
    run = airflow_deployment.wait_for_run(dag_id, run_id, 300)
    assert run["state"] == "success", airflow_deployment.diagnostics()
    first = airflow_deployment.xcom(dag_id, run_id, task_id)
    assert [n for n, value in enumerate(first) if value is None] == FAILING
    assert read_ledger(airflow_deployment, dag_id, run_id, task_id)["counts"]["failed"] == len(FAILING)

    # A plain clear, as users know it, runs every item again (and the 37 fail again).
    airflow_deployment.api.request(
        "POST",
        f"/api/v2/dags/{dag_id}/clearTaskInstances",
        json={"dry_run": False, "only_failed": False, "dag_run_id": run_id, "task_ids": [task_id]},
    )
    run = airflow_deployment.wait_for_run(dag_id, run_id, 300)
    assert run["state"] == "success", airflow_deployment.diagnostics()
    assert len(tries(home)[2]) == 10_000
    assert airflow_deployment.xcom(dag_id, run_id, task_id) == first

    # The partner is fixed: rerun only what failed, with the documented command.
    (home / "rerun-effects" / "broken").unlink()
    token = airflow_deployment.api.http.headers["Authorization"].removeprefix("Bearer ")
    command = subprocess.run(
        [sys.executable, "-m", "airflow_iterate", "rerun-failed", dag_id, run_id, task_id,
         "--api-url", airflow_deployment.base_url],
        env={**os.environ, "AIRFLOW_API_TOKEN": token},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert command.returncode == 0, command.stderr
    assert '"cleared": ["work[-1]"]' in command.stdout
    run = airflow_deployment.wait_for_run(dag_id, run_id, 300)
    assert run["state"] == "success", airflow_deployment.diagnostics()

    assert sorted(tries(home)[3]) == FAILING and set(tries(home)[3].values()) == {1}
    assert airflow_deployment.xcom(dag_id, run_id, task_id) == [n * 3 for n in range(10_000)]
    summary = airflow_deployment.xcom(dag_id, run_id, task_id, key="iterate_summary")
    assert summary["resumed"] == 10_000 - len(FAILING) and summary["succeeded"] == len(FAILING)
    assert read_ledger(airflow_deployment, dag_id, run_id, task_id)["counts"]["failed"] == 0
