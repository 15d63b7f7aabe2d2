"""An isolated Airflow installation for one benchmark run, and running helpers in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class BenchmarkError(RuntimeError):
    pass


class AirflowHome:
    """A temporary AIRFLOW_HOME; its variables go into ``os.environ`` so that this process (which
    imports Airflow through airflow_iterate) and every subprocess see the same installation and
    never touch the user's own ``~/airflow``."""

    def __init__(self, *, max_map_length: int) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-"))
        self.dags = self.path / "dags"
        self.dags.mkdir()
        self.log_dir = self.path / "bench-logs"
        self.log_dir.mkdir()
        self.variables = {
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, max_map_length)),
            # INFO keeps IterateOperator's "Iterate finished" line, which is cross-checked.
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }

    def activate(self) -> None:
        if "airflow" in sys.modules:
            raise BenchmarkError("Airflow was imported before the benchmark's AIRFLOW_HOME was set")
        os.environ.update(self.variables)
        pythonpath = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pythonpath if pythonpath else "")

    def migrate(self) -> None:
        run_logged([sys.executable, "-m", "airflow", "db", "migrate"], self.log_dir / "db-migrate.log")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def run_logged(command: list[str], log: Path) -> None:
    """Run ``command`` with all of its output in ``log``, so Airflow's logging stays off the console."""
    with log.open("w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        tail = log.read_text()[-4000:]
        raise BenchmarkError(f"{' '.join(command)} failed (exit {proc.returncode}); see {log}:\n{tail}")


def run_module_json(module: str, args: list[str], log: Path) -> Any:
    """Run ``python -m module args --json-out FILE`` and return what it wrote to FILE."""
    result = log.with_suffix(".json")
    run_logged([sys.executable, "-m", module, *args, "--json-out", str(result)], log)
    return json.loads(result.read_text())
