"""A real task process killed with SIGTERM stops cleanly: item cleanup runs, counts are reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DAG_FILE = textwrap.dedent(
    """
    import asyncio, os, pathlib

    import pendulum
    from airflow.sdk import dag, task

    import airflow_iterate  # noqa: F401

    MARKS = pathlib.Path(os.environ["ITERATE_TEST_MARKS"])


    @dag(dag_id="kill_me", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    def kill_me():
        @task
        async def hang(n: int) -> int:
            if n < 5:
                return n
            (MARKS / f"started-{n}").touch()
            try:
                await asyncio.Event().wait()  # never finishes on its own
            finally:
                (MARKS / f"cleaned-{n}").touch()
            return n

        hang.iterate(n=list(range(100)), concurrency=3)


    kill_me()
    """
)


def _wait_for(predicate: object, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; log tail:\n{log.read_text()[-3000:]}")


def test_sigterm_cancels_in_flight_items_and_runs_their_cleanup(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "kill_me.py").write_text(DAG_FILE)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(os.environ, AIRFLOW__CORE__DAGS_FOLDER=str(dags), ITERATE_TEST_MARKS=str(marks))
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)

    log = tmp_path / "dags-test.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [airflow, "dags", "test", "kill_me"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            started = lambda: len(list(marks.glob("started-*"))) == 3  # noqa: E731
            _wait_for(started, 120, "three items in flight", log)
            os.kill(process.pid, signal.SIGTERM)
            exit_code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    output = log.read_text()
    started_items = sorted(p.name.split("-")[1] for p in marks.glob("started-*"))
    cleaned_items = sorted(p.name.split("-")[1] for p in marks.glob("cleaned-*"))
    assert cleaned_items == started_items, output[-3000:]
    assert "the task was killed: 5 item(s) completed, 3 in-flight item(s) cancelled" in output
    assert exit_code is not None
