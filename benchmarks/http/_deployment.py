"""The real deployment rows 1, 2 and 5's DB load run in: PostgreSQL, api-server, scheduler,
dag-processor and triggerer, LocalExecutor, every socket on 127.0.0.1.

It is the end-to-end tests' harness (``tests/e2e/_deployment.py``) pointed at the benchmark's
PostgreSQL, plus ``airflow triggerer --skip-serve-logs``: without that flag the triggerer starts
a log server on 0.0.0.0:8794 (``[logging] trigger_log_server_port``); with it the api-server
reads trigger logs from ``$AIRFLOW_HOME/logs`` as it does the tasks'. After start-up every
listening socket of every component is checked to be on loopback.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.e2e._deployment import AirflowDeployment

from ._config import PARALLELISM

#: the DAG files, by the name they get in the dags folder
DAG_FILES = {
    "http_bench_provider.py": Path(__file__).with_name("_dags_provider.py"),
    "http_bench_iterate.py": Path(__file__).with_name("_dags_iterate.py"),
}
TRIGGERER_HEALTHY_TIMEOUT = 60.0


class BenchmarkDeployment:
    """Starts the components with ``settings`` (what the DAG files read) and the given environment."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        env: Mapping[str, str],
        *,
        dag_files: Mapping[str, Path] = DAG_FILES,
        keep: bool = False,
    ) -> None:
        #: keep the AIRFLOW_HOME (components' and tasks' logs) after stop()
        self.keep = keep
        self.work = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-http-"))
        source = self.work / "dags-source"
        source.mkdir()
        for name, path in dag_files.items():
            shutil.copy(path, source / name)
        (source / "settings.json").write_text(json.dumps(settings))
        self.home = self.work / "home"
        self.home.mkdir()
        self.airflow = AirflowDeployment(self.home, source, extra_env=self._environment(env))

    @staticmethod
    def _environment(env: Mapping[str, str]) -> dict[str, str]:
        return {
            **env,
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            # A deployment keeps Airflow's parsing defaults; the harness's 5 s re-parse would add its
            # CPU and its DB writes to every row.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "300",
            # The harness's api-server runs one worker; the triggerer logs next to the tasks.
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }

    def start(self, dag_ids: list[str]) -> None:
        self.airflow.start(dag_ids)
        self.airflow.spawn_process(
            "triggerer", self.airflow.airflow_command("triggerer", "--skip-serve-logs")
        )
        self.airflow.wait_for(
            "the triggerer to report healthy", self._triggerer_healthy, TRIGGERER_HEALTHY_TIMEOUT
        )
        self.check_loopback()

    def _triggerer_healthy(self) -> bool | None:
        health = self.airflow.api.get("/api/v2/monitor/health")
        return True if (health.get("triggerer") or {}).get("status") == "healthy" else None

    def check_loopback(self) -> list[str]:
        """Every listening socket of every component; raises if one is not on loopback."""
        listeners = self.airflow.listeners()
        outside = [str(listener) for listener in listeners if not listener.is_loopback]
        if outside:
            raise RuntimeError("listening beyond loopback:\n" + "\n".join(outside))
        return [str(listener) for listener in listeners]

    def roots(self) -> Callable[[], list[int]]:
        components = self.airflow.components
        return lambda: [c.process.pid for c in components if c.process.poll() is None]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.airflow.api.get(
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100, offset=len(found)
            )
            found += page["task_instances"]
            if len(found) >= page["total_entries"] or not page["task_instances"]:
                return found

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        return self.airflow.xcom(dag_id, run_id, task_id, map_index=map_index)

    def wait(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        """Poll ``probe`` until it returns something; fails early, with every log, if a component dies."""
        return self.airflow.wait_for(what, probe, timeout)

    def stop(self) -> None:
        try:
            self.airflow.stop()
        finally:
            if not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)


def timestamp(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_seconds(run: dict[str, Any]) -> float:
    return (timestamp(run["end_date"]) - timestamp(run["start_date"])).total_seconds()


def ti_seconds(ti: dict[str, Any]) -> float:
    """A task instance's first start to its end (a deferred one's trips through the triggerer included)."""
    return (timestamp(ti["end_date"]) - timestamp(ti["start_date"])).total_seconds()
