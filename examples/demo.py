"""`make demo`: the real job, end to end, on this machine.

Generates XML files (``FILES``, default 2,000; ``FILES=17000`` for the proposal's size), serves
them from a real OpenSSH sshd on 127.0.0.1 behind a delay proxy (``RTT_MS``, default 20 ms round
trip, like a server in another region), then runs the ``sftp_to_warehouse`` DAG with
``airflow dags test``: list the files, download and parse each one with ``.iterate()`` in ONE task
instance, load the rows into a SQLite warehouse through an Airflow connection. Finally it checks
the warehouse: every file loaded exactly once, every record present.

Everything lives under .demo/sftp/ (its own AIRFLOW_HOME, the files, the warehouse).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer, current_user

from ._xml_files import generate

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo" / "sftp"
HOME = DEMO / "airflow-home"
REMOTE = DEMO / "remote"
WAREHOUSE = DEMO / "warehouse.db"
STAGING = DEMO / "staging"
DAG_ID = "sftp_to_warehouse"


def _environment(sftp_host: str, sftp_port: int, server: SSHServer) -> dict[str, str]:
    sftp = {
        "conn_type": "sftp",
        "host": sftp_host,
        "port": sftp_port,
        "login": current_user(),
        "extra": server.connection_extra(),  # pins the server's host key: checking stays on
    }
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "examples" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_DEMO_SFTP=json.dumps(sftp),
        AIRFLOW_CONN_DEMO_WAREHOUSE=json.dumps({"conn_type": "sqlite", "host": str(WAREHOUSE)}),
        DEMO_REMOTE_ROOT=str(REMOTE),
        DEMO_STAGING=f"file://{STAGING}/",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def _airflow(env: dict[str, str], *args: str, log: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    with log.open("w") as out:
        proc = subprocess.run([str(airflow), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        sys.exit(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}); log {log}:\n{tail}")


def main() -> None:
    files = int(os.environ.get("FILES", "2000"))
    rtt_ms = float(os.environ.get("RTT_MS", "20"))
    HOME.mkdir(parents=True, exist_ok=True)
    print(f"Generating {files:,} XML files (2-40 KB, fixed seed) in {REMOTE} ...")
    expected = generate(REMOTE, files)
    total_bytes = sum(p.stat().st_size for p in REMOTE.rglob("*.xml"))
    server = SSHServer(DEMO / "sshd")
    server.start()
    proxy = DelayProxy(server.host, server.port, delay=rtt_ms / 2000).start() if rtt_ms > 0 else None
    try:
        host, port = (proxy.host, proxy.port) if proxy else (server.host, server.port)
        print(
            f"OpenSSH sshd on {server.host}:{server.port}"
            + (f", via a {rtt_ms:g} ms RTT proxy on :{port}" if proxy else "")
        )
        env = _environment(host, port, server)
        WAREHOUSE.unlink(missing_ok=True)
        shutil.rmtree(STAGING, ignore_errors=True)
        _airflow(env, "db", "migrate", log=DEMO / "db-migrate.log")
        _airflow(env, "dags", "reserialize", log=DEMO / "reserialize.log")
        print(f"Running `airflow dags test {DAG_ID}` (log: {DEMO / 'dags-test.log'}) ...")
        started = time.monotonic()
        _airflow(env, "dags", "test", DAG_ID, log=DEMO / "dags-test.log")
        wall = time.monotonic() - started
    finally:
        if proxy is not None:
            proxy.close()
        server.stop()
    os.environ.update(env)
    _report(expected, total_bytes, wall)


def _task_report(dag_id: str, task_id: str) -> tuple[str, dict[str, Any], float]:
    """The last run of ``dag_id``: its state, the iterated task's summary, and its seconds."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None, "the demo DAG run is missing"
        fetch = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id, task_id=task_id).one()
        summary = fetch.xcom_pull(task_ids=task_id, key="iterate_summary", session=session)
        seconds = (fetch.end_date - fetch.start_date).total_seconds()
        return str(run.state), summary or {}, seconds


def _report(expected: dict[str, int], total_bytes: int, wall: float) -> None:
    state, summary, fetch_seconds = _task_report(DAG_ID, "fetch_and_parse")
    with sqlite3.connect(WAREHOUSE) as db:
        per_file = dict(db.execute("SELECT file, COUNT(*) FROM records GROUP BY file").fetchall())
        rows = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    missing = sorted(set(expected) - set(per_file))
    wrong = sorted(f for f, n in per_file.items() if expected.get(f) != n)
    files = len(expected)
    print(f"\nDAG run {state} in {wall:.1f}s (including Airflow start-up)")
    elapsed = float(summary.get("elapsed", fetch_seconds))
    print(
        f"fetch_and_parse (ONE task instance, .iterate() over {files:,} files): downloaded and parsed "
        f"{summary.get('succeeded', 0):,} files in {elapsed:.1f}s = {files / elapsed:,.0f} files/s, "
        f"{total_bytes / elapsed / 1e6:.1f} MB/s, {summary.get('retried', 0)} retries"
    )
    print(f"  (the task instance took {fetch_seconds:.1f}s in all, its start-up and XCom push included)")
    print(f"warehouse: {rows:,} rows from {len(per_file):,} files")
    if state != "success" or missing or wrong:
        sys.exit(f"CHECK FAILED: {len(missing)} file(s) missing, {len(wrong)} with the wrong record count")
    records = sum(expected.values())
    print(f"check: every one of the {files:,} files loaded exactly once, all {records:,} records present")


if __name__ == "__main__":
    main()
