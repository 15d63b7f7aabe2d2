"""Running a DAG object through ``dag.test()`` and reading what it left in the metadata DB."""

from __future__ import annotations

import os
from typing import Any

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.sdk import DAG
from airflow.utils.session import create_session

try:
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]

try:
    from airflow.serialization.serialized_objects import DagSerialization
except ImportError:  # Airflow 3.1: the same from_dict/to_dict on the serialized DAG class
    from airflow.serialization.serialized_objects import (  # type: ignore[no-redef]
        SerializedDAG as DagSerialization,
    )

__all__ = [
    "DagSerialization",
    "ledger",
    "mapped_xcoms",
    "rendered_map_indexes",
    "run_dag",
    "task_instances",
    "xcom",
]


def run_dag(dag: DAG) -> DagRun:
    """Serialize ``dag`` (dag.test() refuses unserialized DAGs) and run it in this process."""
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test()


def xcom(dag_run: DagRun, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=dag_run.run_id,
                dag_ids=dag_run.dag_id,
                task_ids=task_id,
                key=key,
                map_indexes=map_index,
            )
        ).first()
        assert row is not None, f"no XCom {key!r} for task {task_id!r}"
        return XComModel.deserialize_value(row)


def task_instances(dag_run: DagRun) -> list[tuple[str, int, str | None]]:
    """(task_id, map_index, state) of every task instance of the run."""
    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return sorted((ti.task_id, ti.map_index, ti.state) for ti in rows)


def mapped_xcoms(dag_run: DagRun, task_id: str, key: str = "return_value") -> list[Any]:
    """The XCom ``key`` of every task instance of a mapped task, in map-index order."""
    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key)
        ).all()
        return [XComModel.deserialize_value(row) for row in sorted(rows, key=lambda row: row.map_index)]


def rendered_map_indexes(dag_run: DagRun, task_id: str) -> list[str | None]:
    """The labels (rendered ``map_index_template``) of a task's instances, in map-index order."""
    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id
        )
        return [ti.rendered_map_index for ti in sorted(rows, key=lambda ti: ti.map_index)]


def ledger(dag_run: DagRun, task_id: str, name: str = "ledger", map_index: int = -1) -> Any:
    """The item ledger (or one of its failure pages) an iterated task instance wrote.

    Airflow 3.3+: its task state store; before: the XCom the task pushed while it ran.
    """
    import json

    try:
        from airflow.models.task_state_store import TaskStateStoreModel
    except ImportError:  # Airflow 3.1: no task state store
        return xcom(dag_run, task_id, key="iterate_" + name.replace("/", "_"), map_index=map_index)
    with create_session() as session:
        row = (
            session.query(TaskStateStoreModel)
            .filter_by(
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                task_id=task_id,
                map_index=map_index,
                key=f"airflow_iterate/{name}",
            )
            .one_or_none()
        )
        assert row is not None, f"no item ledger {name!r} for task {task_id!r}"
        return json.loads(row.value)
