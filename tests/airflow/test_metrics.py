"""Progress reaches Airflow's metrics: a real StatsD listener receives the iterate gauges."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DAG_FILE = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import dag, task

    import airflow_iterate  # noqa: F401


    @dag(dag_id="metrics_dag", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    def metrics_dag():
        @task
        async def square(n: int) -> int:
            return n * n

        square.iterate(n=list(range(50)))
        square.override(task_id="halves").iterate(n=list(range(30)), chunks=2)


    metrics_dag()
    """
)


def test_iterate_gauges_are_sent_to_statsd(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "metrics_dag.py").write_text(DAG_FILE)
    env = dict(
        os.environ,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__METRICS__STATSD_ON="True",
        AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
        AIRFLOW__METRICS__STATSD_PORT=str(port),
        AIRFLOW__METRICS__STATSD_PREFIX="airflow",
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)
        proc = subprocess.run(
            [airflow, "dags", "test", "metrics_dag"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        listener.setblocking(False)
        received: list[str] = []
        while True:
            try:
                received += listener.recv(65536).decode().splitlines()
            except BlockingIOError:
                break
    finally:
        listener.close()
    ours = [line.split(":", 1) for line in received if line.startswith("airflow.iterate.")]
    gauges = dict(ours)  # the last value of each
    sent: dict[str, set[str]] = {}
    for name, value in ours:
        sent.setdefault(name, set()).add(value)
    # the tagged name (tags reach only StatsD servers that take them) is shared by both tasks
    assert "50|g" in sent.get("airflow.iterate.succeeded", set()), received[:50]
    assert sent.get("airflow.iterate.failed") == {"0|g"}
    assert "airflow.iterate.rate" in gauges
    # the same gauges under the task's own name, for StatsD servers without tags
    assert gauges.get("airflow.iterate.metrics_dag.square.succeeded") == "50|g", received[:50]
    assert gauges.get("airflow.iterate.metrics_dag.square.failed") == "0|g"
    # each chunk under its own name: chunks running at once do not overwrite each other
    assert gauges.get("airflow.iterate.metrics_dag.halves.chunks.0.succeeded") == "15|g", received[:80]
    assert gauges.get("airflow.iterate.metrics_dag.halves.chunks.1.succeeded") == "15|g"
