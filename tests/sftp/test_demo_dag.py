"""The demo's DAG (examples/dags/sftp_to_warehouse.py), end to end through dag.test().

A real sshd serves generated XML files through the delay proxy, which cuts every connection in the
middle of the downloads: the items in flight fail, iterate's per-item retries fetch them again,
and the warehouse still ends up with every file exactly once.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer
from examples._xml_files import generate

from tests.airflow._dagrun import run_dag, xcom

pytestmark = pytest.mark.slow

DAG_FILE = Path(__file__).resolve().parents[2] / "examples" / "dags" / "sftp_to_warehouse.py"


def test_demo_dag_loads_every_file_exactly_once_despite_cut_connections(
    airflow_db: None,
    sshd: SSHServer,
    make_proxy: Callable[..., DelayProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = sshd.data_dir / "demo-incoming"
    expected = generate(remote, 300)
    for path in [remote, *remote.iterdir()]:
        path.chmod(0o755)
    proxy = make_proxy(sshd, delay=0.002)
    warehouse = sshd.directory / "warehouse.db"
    sftp = {"conn_type": "sftp", "host": proxy.host, "port": proxy.port, "extra": sshd.connection_extra()}
    monkeypatch.setenv("AIRFLOW_CONN_DEMO_SFTP", json.dumps({**sftp, "login": "root"}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEMO_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    )
    monkeypatch.setenv("DEMO_REMOTE_ROOT", str(remote))
    monkeypatch.setenv("DEMO_STAGING", f"file://{sshd.directory / 'staging'}/")

    spec = importlib.util.spec_from_file_location("sftp_to_warehouse_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.sftp_to_warehouse()  # the @dag function builds a fresh DAG object

    # Cut every connection when the 100th download has finished, with dozens in flight: a real
    # fault in the middle of the run, at a deterministic point.
    real_download = module.download_bytes
    finished = 0
    cut_links: list[int] = []

    async def download_then_cut(pool: Any, path: str) -> bytes:
        nonlocal finished
        data = cast(bytes, await real_download(pool, path))
        finished += 1
        if finished == 100:
            cut_links.append(proxy.cut())
        return data

    monkeypatch.setattr(module, "download_bytes", download_then_cut)
    dag_run = run_dag(dag)

    assert dag_run.state == "success"
    assert cut_links and cut_links[0] >= 1, "no connection was cut"
    summary = xcom(dag_run, "fetch_and_parse", key="iterate_summary")
    assert summary["succeeded"] == 300
    assert summary["retried"] >= 1  # the items caught by the cut were fetched again
    assert xcom(dag_run, "load") == {"files": 300, "rows": sum(expected.values())}
    with sqlite3.connect(warehouse) as db:
        per_file = dict(db.execute("SELECT file, COUNT(*) FROM records GROUP BY file").fetchall())
    assert per_file == expected
