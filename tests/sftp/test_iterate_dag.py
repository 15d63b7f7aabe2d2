"""The headline use: a DAG lists a remote tree and downloads every file with ``.iterate()``.

Runs through ``dag.test()`` against a real metadata DB: the connection is read through the Task SDK
from inside a running task, and every item of the iterated task shares one pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG, ObjectStoragePath, task
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

import airflow_iterate  # noqa: F401 - adds .iterate() to @task functions
from airflow_iterate.sftp import SFTPPool, download_to_storage, list_files
from tests.airflow._dagrun import run_dag, task_instances, xcom

from .conftest import DataSet

START = pendulum.datetime(2025, 1, 1, tz="UTC")


@pytest.mark.slow
def test_iterate_downloads_a_remote_tree_into_object_storage(
    airflow_db: None,
    sshd: SSHServer,
    data: DataSet,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.NOTSET, logger="asyncssh")  # the suite quiets it: log as in production
    proxy = make_proxy(sshd, delay=0.005)
    conn_id = make_connection(sshd, via=proxy)
    remote_root = str(data.root / "xml")
    target = f"file://{tmp_path}/landing/"
    pool_stats: list[object] = []

    with DAG("sftp_iterate_download", schedule=None, start_date=START, catchup=False) as dag:

        @task
        async def list_remote() -> list[str]:
            async with SFTPPool(conn_id) as pool:
                return [f.path for f in await list_files(pool, remote_root)]

        @task
        async def fetch(path: str) -> str:
            pool = SFTPPool.shared(conn_id)
            if not pool_stats:
                pool_stats.append(pool)
            written = await download_to_storage(
                pool, path, ObjectStoragePath(target), remote_root=remote_root
            )
            return str(written)

        fetch.iterate(path=list_remote(), concurrency=64)

    dag_run = run_dag(dag)
    assert dag_run.state == "success", task_instances(dag_run)
    written = xcom(dag_run, "fetch")
    assert len(written) == len(data.files)
    for remote, location in zip(sorted(data.files), written, strict=True):
        relative = Path(remote).relative_to(remote_root)
        assert location == f"{target}{relative}"
        assert (tmp_path / "landing" / relative).read_bytes() == data.files[remote]
    # one task instance; one pool for all of its items, closed when the task's loop ended
    assert [t for t in task_instances(dag_run) if t[0] == "fetch"] == [("fetch", -1, "success")]
    (pool,) = pool_stats
    assert isinstance(pool, SFTPPool) and pool.closed
    assert pool.statistics().opened == 2  # 64 in flight, 32 per session
    # asyncssh logs each connection's handshake at INFO: the listing task's one connection shows,
    # the iterated task's two do not ([iterate] quiet_loggers), and its own lines still do
    handshakes = [r for r in caplog.records if "Beginning auth for user" in r.getMessage()]
    assert len(handshakes) == 1


@pytest.mark.slow
def test_the_providers_sftp_operator_iterates_with_its_own_concurrency_parameter(
    airflow_db: None, data: DataSet, conn_id: str, tmp_path: Path
) -> None:
    # SFTPOperator (sftp provider 7.x) has a concurrency parameter of its own: in .iterate() the
    # keyword is the run's option, and the operator keeps its default (or what .partial() gives)
    from airflow.providers.sftp.operators.sftp import SFTPOperator

    remote = sorted(data.files)[:12]
    with DAG("sftp_operator_iterate", schedule=None, start_date=START, catchup=False) as dag:
        SFTPOperator.partial(
            task_id="get",
            ssh_conn_id=conn_id,
            operation="get",
            create_intermediate_dirs=True,
            local_filepath=f"{tmp_path}/{{{{ run_id }}}}/{{{{ iterate_index }}}}.xml",
        ).iterate(remote_filepath=remote, concurrency=4)

    dag_run = run_dag(dag)
    assert dag_run.state == "success", task_instances(dag_run)
    assert xcom(dag_run, "get", key="iterate_summary")["concurrency"] == 4
    (run_dir,) = tmp_path.iterdir()
    for index, path in enumerate(remote):
        assert (run_dir / f"{index}.xml").read_bytes() == data.files[path]
