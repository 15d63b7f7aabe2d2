"""Row 1: mapped ``SFTPOperator`` task instances through a real scheduler + LocalExecutor.

The deployment is the end-to-end tests' harness (api-server, scheduler, dag-processor on
loopback, SQLite). It runs only while row 1 is measured: its idle loops would otherwise take CPU
from the rows measured in-process on the same small machine.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e._deployment import AirflowDeployment

from ._accounting import RssSampler, cpu_between, cpu_snapshot, machine_busy, self_cpu
from ._config import PARALLELISM
from ._data import DataSet
from ._results import Measurement
from ._servers import Link, Servers

DAG_FILE = Path(__file__).with_name("_expand_dag.py")
#: generous: the measured cost is about half a second per mapped task instance
SECONDS_PER_TI_LIMIT = 10.0
RUN_TIMEOUT_BASE = 180.0


def _dag_id(link: Link) -> str:
    return f"sftp_expand_{link.name}"


def _environment(servers: Servers, files: int) -> dict[str, str]:
    return {
        **servers.environment(),
        # What a user raises to map over more than 1,024 items.
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, files)),
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        # The harness re-parses DAG files every 5 s to pick up test DAGs quickly; a deployment
        # keeps Airflow's defaults, and the parsing would only add CPU time to the run.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "300",
    }


def _dags_source(work: Path, data: DataSet, links: list[Link]) -> Path:
    source = work / "dags-source"
    source.mkdir()
    shutil.copy(DAG_FILE, source / "sftp_expand.py")
    paths_file = work / "paths.json"
    paths_file.write_text(json.dumps(data.paths))
    downloads = work / "downloads"
    settings = {
        "paths_file": str(paths_file),
        "download_dir": str(downloads),
        "dags": {_dag_id(link): link.conn_id for link in links},
    }
    for link in links:
        (downloads / _dag_id(link)).mkdir(parents=True)
    (source / "settings.json").write_text(json.dumps(settings))
    return downloads


def _timestamp(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _roots(deployment: AirflowDeployment) -> Callable[[], list[int]]:
    return lambda: [c.process.pid for c in deployment.components if c.process.poll() is None]


def _measure(
    deployment: AirflowDeployment, servers: Servers, link: Link, data: DataSet, downloads: Path
) -> Measurement:
    api = deployment.api
    dag_id = _dag_id(link)
    roots = _roots(deployment)
    sshd_before = cpu_snapshot([servers.listener_pid()])
    before, proxy_before, busy_before = cpu_snapshot(roots()), self_cpu(), machine_busy()
    started = time.monotonic()
    with RssSampler(roots) as rss:
        run_id = deployment.trigger(dag_id, prefix="bench")
        timeout = RUN_TIMEOUT_BASE + SECONDS_PER_TI_LIMIT * len(data.paths)
        run = deployment.wait_for_run(dag_id, run_id, timeout)
    after, proxy_cpu, busy = cpu_snapshot(roots()), self_cpu() - proxy_before, machine_busy() - busy_before
    window = time.monotonic() - started
    servers.wait_sessions_gone()
    sshd_cpu = cpu_between(sshd_before, cpu_snapshot([servers.listener_pid()]))
    states = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1)
    if run["state"] != "success":
        raise RuntimeError(f"DAG run {run_id} ended {run['state']}\n{deployment.diagnostics()}")
    written = sorted((downloads / dag_id).glob("*.xml"))
    read = sum(p.stat().st_size for p in written)
    if len(written) != len(data.paths) or read != data.total_bytes or states["total_entries"] != len(written):
        raise RuntimeError(
            f"DAG run {run_id}: {states['total_entries']} task instances wrote {len(written)} files, "
            f"{read:,} bytes; expected {len(data.paths)} files, {data.total_bytes:,} bytes"
        )
    cpu = cpu_between(before, after)
    return Measurement(
        key="expand",
        number="1",
        label=f"`SFTPOperator.partial().expand()`: a mapped task instance per file, scheduler + "
        f"LocalExecutor ({PARALLELISM} slots)",
        link=link.name,
        files=len(written),
        bytes=read,
        wall=(_timestamp(run["end_date"]) - _timestamp(run["start_date"])).total_seconds(),
        cpu=cpu,
        peak_rss=rss.peak,
        sshd_cpu=sshd_cpu,
        proxy_cpu=proxy_cpu,
        other_cpu=max(0.0, busy - cpu - sshd_cpu - proxy_cpu),
        details={"process_wall": window},
    )


def measure_expand(servers: Servers, data: DataSet, progress: Callable[[str], None]) -> list[Measurement]:
    """Row 1 over every link, one DAG run each."""
    links = servers.links()
    work = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-expand-"))
    try:
        downloads = _dags_source(work, data, links)
        home = work / "home"
        home.mkdir()
        deployment = AirflowDeployment(
            home, work / "dags-source", extra_env=_environment(servers, len(data.paths))
        )
        try:
            progress(f"row 1: starting api-server, scheduler, dag-processor in {home}")
            deployment.start([_dag_id(link) for link in links])
            results = []
            for link in links:
                progress(f"row 1: {len(data.paths):,} mapped SFTPOperator TIs, {link.rtt_ms:g} ms RTT")
                results.append(_measure(deployment, servers, link, data, downloads))
            return results
        finally:
            deployment.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
