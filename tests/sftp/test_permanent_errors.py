"""A missing or refused file fails its item at once; a connection lost mid-transfer is retried.

The DAG tests run ``.iterate()`` through ``dag.test()`` against the real sshd (and, for the lost
connection, the fault proxy in front of it), counting each item's attempts.
"""

from __future__ import annotations

import asyncio
import pickle
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pendulum
import pytest
from airflow.sdk import DAG, task
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

import airflow_iterate  # noqa: F401 - adds .iterate() to @task functions
from airflow_iterate._core import is_permanent_error
from airflow_iterate.sftp import (
    SFTPConnectError,
    SFTPConnectionLostError,
    SFTPFileNotFoundError,
    SFTPPermissionError,
    SFTPPool,
    SFTPPoolUsageError,
    SFTPTransferError,
    download_bytes,
)
from airflow_iterate.sftp._error_map import _UnusableFile, transfer_error
from airflow_iterate.sftp._remote import _changed
from tests.airflow._dagrun import run_dag, task_instances, xcom

from .conftest import DataSet

START = pendulum.datetime(2025, 1, 1, tz="UTC")
NOT_RETRIED = "not retried: the error is permanent (item_retry_permanent=True retries it)"

# -- which of the integration's errors are permanent ---------------------------------------------


def _wrapped(exc: BaseException) -> SFTPTransferError:
    return transfer_error(exc, "download", "/in/a.xml", "partner")


def test_not_found_permission_and_login_errors_are_permanent_a_lost_connection_is_not() -> None:
    assert is_permanent_error(_wrapped(asyncssh.SFTPNoSuchFile("No such file")))
    refused = _wrapped(asyncssh.SFTPPermissionDenied("Permission denied"))
    assert isinstance(refused, SFTPPermissionError) and is_permanent_error(refused)
    assert type(_wrapped(asyncssh.SFTPNoSuchPath("No such path"))) is SFTPFileNotFoundError
    lost = _wrapped(asyncssh.ConnectionLost("Connection lost"))
    assert isinstance(lost, SFTPConnectionLostError) and not is_permanent_error(lost)
    assert not is_permanent_error(_wrapped(asyncssh.SFTPConnectionLost("Connection lost")))
    assert not is_permanent_error(_wrapped(TimeoutError()))
    assert is_permanent_error(SFTPConnectError("login refused", conn_id="partner", permanent=True))
    assert not is_permanent_error(SFTPConnectError("refused", conn_id="partner", transient=True))
    assert not is_permanent_error(SFTPConnectError("handshake ended", conn_id="partner"))
    assert is_permanent_error(SFTPPoolUsageError("another event loop"))


def test_other_transfer_errors_mean_what_they_wrap() -> None:
    # the base class carries the verdict on its cause, which is not followed in general
    assert is_permanent_error(_wrapped(asyncssh.SFTPOpUnsupported("Operation unsupported")))
    assert is_permanent_error(_wrapped(asyncssh.SFTPFileIsADirectory("Is a directory")))
    assert not is_permanent_error(_wrapped(asyncssh.SFTPFailure("Failure")))
    assert not is_permanent_error(_wrapped(OSError(28, "No space left on device")))
    assert is_permanent_error(_wrapped(FileNotFoundError(2, "No such file", "local.csv")))
    # a file that is not a regular file stays so; one still being written is whole later
    assert is_permanent_error(_wrapped(_UnusableFile("it is not a regular file")))
    changed = _wrapped(_changed("its size went from 10 to 20 bytes"))
    assert type(changed) is SFTPTransferError and "changed while it was read" in str(changed)
    assert not is_permanent_error(changed)


def test_verdicts_survive_pickling() -> None:
    for error in (
        _wrapped(asyncssh.SFTPOpUnsupported("Operation unsupported")),
        _wrapped(_changed("it was modified")),
        _wrapped(asyncssh.SFTPNoSuchFile("No such file")),
        SFTPConnectError("login refused", conn_id="partner", permanent=True),
        SFTPConnectError("refused", conn_id="partner", transient=True),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert is_permanent_error(copy) == is_permanent_error(error), error


# -- through .iterate(), against the real server ------------------------------------------------


def _logged(logs: str, index: int, path: str, error: str, outcome: str) -> bool:
    """Whether the task log has a retry line for item ``index`` (its long path shortened)."""
    line = (
        rf"Iterate retries: item {index} \(input '[^']*{re.escape(Path(path).name)}'\) failed with "
        rf"{error}: download of .*{re.escape(outcome)}"
    )
    return re.search(line, logs) is not None


def _run_fetch(
    dag_id: str, conn_id: str, paths: list[str], fetch: Callable[..., Any], **options: Any
) -> tuple[Any, dict[str, Any]]:
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        task(fetch, task_id="fetch").iterate(path=paths, concurrency=1, **options)
    dag_run = run_dag(dag)
    assert [t for t in task_instances(dag_run) if t[0] == "fetch"] == [("fetch", -1, "success")]
    return dag_run, xcom(dag_run, "fetch", key="iterate_summary")


@pytest.mark.parametrize("retry_permanent", [False, True])
def test_a_missing_or_refused_file_is_not_retried(
    airflow_db: None,
    unprivileged_conn_id: str,
    data: DataSet,
    retry_permanent: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    missing = f"{data.root}/xml/batch-0/no-such-doc.xml"
    present = sorted(data.files)[0]
    paths = [missing, data.unreadable, present]
    attempts: Counter[str] = Counter()

    async def fetch(path: str) -> int:
        attempts[path] += 1
        return len(await download_bytes(SFTPPool.shared(unprivileged_conn_id), path))

    dag_run, summary = _run_fetch(
        f"sftp_permanent_errors_{retry_permanent}",
        unprivileged_conn_id,
        paths,
        fetch,
        item_retries=3,
        item_retry_delay=0.01,
        item_retry_permanent=retry_permanent,
        max_failures=2,
    )
    logs = "".join(capfd.readouterr())
    assert xcom(dag_run, "fetch") == [None, None, len(data.files[present])]
    failures = xcom(dag_run, "fetch", key="iterate_failures")
    assert [f["error"].split(":")[0] for f in failures] == ["SFTPFileNotFoundError", "SFTPPermissionError"]
    if retry_permanent:
        assert attempts == {missing: 4, data.unreadable: 4, present: 1}
        assert summary["retried"] == 6
        assert NOT_RETRIED not in logs
        assert _logged(logs, 0, missing, "SFTPFileNotFoundError", "; retry 3/3 in ")
    else:
        assert attempts == {missing: 1, data.unreadable: 1, present: 1}  # one attempt each
        assert summary["retried"] == 0
        assert _logged(logs, 0, missing, "SFTPFileNotFoundError", NOT_RETRIED)
        assert _logged(logs, 1, data.unreadable, "SFTPPermissionError", NOT_RETRIED)
        assert logs.count(NOT_RETRIED) == 2
        assert "; retry 1/3" not in logs


def test_a_connection_lost_mid_transfer_is_retried(
    airflow_db: None,
    sshd: SSHServer,
    data: DataSet,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    proxy = make_proxy(sshd)
    conn_id = make_connection(sshd, via=proxy)
    paths = sorted(data.files)[:3]
    victim = paths[1]
    attempts: Counter[str] = Counter()
    cuts: list[int] = []

    async def fetch(path: str) -> int:
        attempts[path] += 1
        pool = SFTPPool.shared(conn_id)
        if path == victim and attempts[path] == 1:  # the first item opened the connection
            await asyncio.to_thread(proxy.stall)  # no answer gets through from now on
            download = asyncio.ensure_future(download_bytes(pool, path))
            await asyncio.sleep(0.05)  # its request is sent, and held by the proxy
            cuts.append(await asyncio.to_thread(proxy.cut))
            return len(await download)
        return len(await download_bytes(pool, path))

    dag_run, summary = _run_fetch(
        "sftp_lost_connection_retried", conn_id, paths, fetch, item_retries=3, item_retry_delay=0.01
    )
    logs = "".join(capfd.readouterr())
    assert cuts == [1]
    assert attempts == {paths[0]: 1, victim: 2, paths[2]: 1}
    assert summary["retried"] == 1 and summary["failed"] == 0
    assert xcom(dag_run, "fetch") == [len(data.files[p]) for p in paths]
    assert _logged(logs, 1, victim, "SFTPConnectionLostError", "; retry 1/3 in ")
