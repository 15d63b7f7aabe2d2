"""DAG for the crash-and-resume test: its task process gets SIGKILLed half-way through.

Each item records its side effect (one line, ``<item> <try>``) in a file under AIRFLOW_HOME, and
the first item of each try writes the task process's PID so the test knows what to kill.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  (adds .iterate to @task functions)

ITEM_COUNT = 1500
EFFECTS = Path(os.environ["AIRFLOW_HOME"]) / "resume-effects"


@dag(dag_id="iterate_resume_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_resume_e2e() -> None:
    @task(retries=1, retry_delay=dt.timedelta(seconds=1))
    async def work(n: int, ti: Any = None) -> int:
        EFFECTS.mkdir(exist_ok=True)
        pid_file = EFFECTS / f"pid-{ti.try_number}"
        if not pid_file.exists():
            pid_file.write_text(str(os.getpid()))
        await asyncio.sleep(0.02)  # one remote call
        with (EFFECTS / "effects.log").open("a") as log:
            log.write(f"{n} {ti.try_number}\n")
        return n * n

    work.iterate(n=list(range(ITEM_COUNT)), concurrency=8, checkpoint_interval=0.5)


iterate_resume_e2e()
