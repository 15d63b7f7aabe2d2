"""Rows 1, 2 and 5 in a real deployment, with the metadata DB's load of each, and the listing.

One deployment (``_deployment.BenchmarkDeployment``: PostgreSQL, api-server, scheduler,
dag-processor, triggerer, LocalExecutor) runs every DAG of ``_deployment_dags.py`` one after the
other. It runs only while these rows are measured: its idle loops would otherwise take CPU from
the rows measured in-process on the same small machine.

The DB load of a DAG run is the difference of PostgreSQL's counters read before the run and once
the run ended and every backend had time to publish its counts, less what the idle deployment
writes in as long a window (measured first: the scheduler's, triggerer's and dag-processor's
heartbeats and loops).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.sftp._accounting import RssSampler, cpu_between, cpu_snapshot, machine_busy, self_cpu

from ._config import PAGE_SIZE, PARALLELISM, RETRIES, Sizes
from ._deployment import DAG_FILES, BenchmarkDeployment, run_seconds, ti_seconds
from ._postgres import DbLoad, DbStats, PostgresServer
from ._results import Measurement
from ._servers import Link, Servers, record_bytes

#: generous: a mapped task instance costs seconds, a deferred one twice that
SECONDS_PER_CALL_LIMIT = 10.0
RUN_TIMEOUT_BASE = 240.0
#: how often a run's state is asked for (each request is a few transactions of the api-server;
#: the idle window before the rows asks as often, so that the background subtracted includes it)
POLL_SECONDS = 1.0
#: the dag-processor's first parses and the DAGs' registration, before the idle window
IDLE_SETTLE = 15.0


@dataclass(frozen=True)
class DagSpec:
    dag_id: str
    key: str
    number: str
    label: str
    calls: int
    job: int
    #: the task whose return value is checked
    task_id: str
    #: "details" (sizes of records 1..calls) or "pages" (ids of the listing's first calls pages)
    kind: str
    #: the provider's deferrable pagination cannot serialize its pages: recorded, not raised
    may_fail: bool = False

    @property
    def dag_file(self) -> str:
        """The DAG file that defines it: this package's rows import it, the provider's do not."""
        return "http_bench_iterate.py" if "iterate" in self.dag_id else "http_bench_provider.py"


def dag_specs(sizes: Sizes, job_calls: int, job_pages: int) -> list[DagSpec]:
    return [
        DagSpec(
            "http_expand",
            "expand",
            "1",
            f"`HttpOperator.partial().expand()`: a mapped task instance per call, scheduler + "
            f"LocalExecutor ({PARALLELISM} slots)",
            sizes.expand,
            job_calls,
            "get",
            "details",
        ),
        DagSpec(
            "http_deferrable",
            "deferrable",
            "2",
            "`HttpOperator.partial(deferrable=True).expand()`: each call through the triggerer",
            sizes.deferrable,
            job_calls,
            "get",
            "details",
        ),
        DagSpec(
            "http_iterate",
            "iterate_deployment",
            "5",
            "`.iterate()` + `airflow_iterate.http`, defaults, in the same deployment",
            sizes.calls,
            job_calls,
            "fetch",
            "details",
        ),
        DagSpec(
            "http_pages_deferrable",
            "pages_deferrable",
            "P1",
            "deferrable `HttpOperator` + `pagination_function` (provider as released)",
            sizes.pages_deferrable,
            job_pages,
            "list",
            "pages",
            may_fail=True,
        ),
        DagSpec(
            "http_pages_deferrable_serializable",
            "pages_deferrable_serializable",
            "P1",
            "the same, its pages made serializable (`HttpResponseSerializer`), one trigger per page",
            sizes.pages_deferrable,
            job_pages,
            "list",
            "pages",
        ),
        DagSpec(
            "http_pages_sync",
            "pages_sync",
            "P2",
            "`HttpOperator` + `pagination_function`, not deferrable (every page in the worker)",
            sizes.pages_sync,
            job_pages,
            "list",
            "pages",
        ),
        DagSpec(
            "http_pages_iterate",
            "pages_iterate",
            "P3",
            "`@task` + `airflow_iterate.http`'s pagination helper",
            sizes.pages,
            job_pages,
            "list_pages",
            "pages",
        ),
    ]


def _settings(specs: list[DagSpec], link: Link) -> dict[str, Any]:
    dags: dict[str, Any] = {}
    for spec in specs:
        entry: dict[str, Any] = {"conn_id": link.conn_id}
        if spec.kind == "pages":
            entry.update(pages=spec.calls, page_size=PAGE_SIZE)
        else:
            entry["calls"] = spec.calls
        dags[spec.dag_id] = entry
    return {"dags": dags, "retries": RETRIES}


def _failure(deployment: BenchmarkDeployment, dag_id: str) -> str:
    """The exception the failed task logged (type and message), from its log file."""
    logs = sorted((deployment.home / "logs").glob(f"dag_id={dag_id}/**/attempt=*.log"))
    for path in reversed(logs):
        for line in reversed(path.read_text(errors="replace").splitlines()):
            if '"Task failed with exception"' not in line:
                continue
            detail = json.loads(line).get("error_detail") or [{}]
            return f"{detail[0].get('exc_type')}: {detail[0].get('exc_value')}"
    return "failed (no exception in the task's log)"


class DeploymentRows:
    def __init__(
        self,
        servers: Servers,
        postgres: PostgresServer,
        link: Link,
        sizes: Sizes,
        progress: Callable[[str], None],
        *,
        job_calls: int,
        job_pages: int,
        only: set[str] | None,
        keep_home: bool = False,
    ) -> None:
        self.servers = servers
        self.postgres = postgres
        self.link = link
        self.sizes = sizes
        self.progress = progress
        self.specs = [
            s
            for s in dag_specs(sizes, job_calls, job_pages)
            if s.calls > 0 and (only is None or s.key in only or s.dag_id in only)
        ]
        if sizes.pages_deferrable <= 2:
            self.specs = [s for s in self.specs if s.key != "pages_deferrable_serializable"]
        self.deployment = BenchmarkDeployment(
            _settings(self.specs, link),
            {**servers.environment(), **postgres.environment()},
            dag_files={name: DAG_FILES[name] for name in {s.dag_file for s in self.specs}},
            keep=keep_home,
        )
        self.info: dict[str, Any] = {}

    def measure(self) -> list[Measurement]:
        if not self.specs:
            return []
        deployment = self.deployment
        try:
            self.progress(
                "deployment: starting a PostgreSQL-backed api-server, scheduler, dag-processor and "
                f"triggerer in {deployment.home}"
            )
            deployment.start([s.dag_id for s in self.specs])
            self.info["listeners"] = deployment.check_loopback()
            self.progress(
                f"deployment: every socket on loopback ({len(self.info['listeners'])} listening); "
                "idle DB load"
            )
            # The idle deployment's writes: heartbeats, the scheduler's and triggerer's loops,
            # re-parsing, and this process asking for a DAG's state as it does while a run goes on.
            time.sleep(IDLE_SETTLE)
            start = self.postgres.settled_stats()
            watched = self.specs[0].dag_id
            while time.monotonic() - start.at < self.sizes.idle_seconds:
                deployment.airflow.api.get(f"/api/v2/dags/{watched}")
                time.sleep(POLL_SECONDS)
            before = self.postgres.stats()
            idle = DbLoad.between(start, before)
            self.info["idle"] = idle.as_dict()
            background = idle.rate()
            self.progress(
                f"deployment: idle {idle.transactions / idle.seconds:.1f} transactions/s, "
                f"{idle.written / idle.seconds:.1f} rows written/s"
            )
            rows = []
            for spec in self.specs:
                row, before = self._measure(spec, before, background)
                rows.append(row)
            return rows
        finally:
            deployment.stop()

    def _measure(self, spec: DagSpec, before: DbStats, background: DbLoad) -> tuple[Measurement, DbStats]:
        deployment = self.deployment
        self.progress(
            f"row {spec.number} {spec.key}: {spec.calls:,} {'pages' if spec.kind == 'pages' else 'calls'}, "
            f"{self.link.rtt_ms:g} ms RTT"
        )
        roots = deployment.roots()
        server_pid, db_pid = self.servers.server_pid(), self.postgres.pid
        cpu_before = cpu_snapshot(roots())
        server_before, db_before = cpu_snapshot([server_pid]), cpu_snapshot([db_pid])
        proxy_before, busy_before = self_cpu(), machine_busy()
        timeout = RUN_TIMEOUT_BASE + SECONDS_PER_CALL_LIMIT * spec.calls
        error = None
        with RssSampler(roots) as rss:
            run_id = deployment.airflow.trigger(spec.dag_id, prefix="bench")
            run = self._wait_for_run(spec.dag_id, run_id, timeout)
        cpu = cpu_between(cpu_before, cpu_snapshot(roots()))
        server_cpu = cpu_between(server_before, cpu_snapshot([server_pid]))
        db_cpu = cpu_between(db_before, cpu_snapshot([db_pid]))
        proxy_cpu, busy = self_cpu() - proxy_before, machine_busy() - busy_before
        after = self.postgres.settled_stats()
        raw = DbLoad.between(before, after)
        # The window is longer than the run: it starts before the trigger and ends STATS_SETTLE
        # after the run's end. What the idle deployment writes in that extra time is taken off;
        # what it does while the run goes on (its loops, heartbeats) is part of the run's cost.
        load = raw.minus(background, seconds=raw.seconds - run_seconds(run))
        tis = deployment.task_instances(spec.dag_id, run_id)
        mapped = [ti for ti in tis if ti["task_id"] == spec.task_id and ti["map_index"] >= 0]
        succeeded = [ti for ti in mapped if ti["state"] == "success"]
        calls = spec.calls
        if run["state"] != "success":
            if spec.may_fail:
                error = _failure(deployment, spec.dag_id)
                self.progress(f"  failed, as the provider does: {error}")
            elif spec.kind == "pages":
                # Every page is a deferral, so the scheduler's deferral race can outlast the
                # listing's retries (each retry starts the listing over): recorded, not raised.
                error = f"failed after {RETRIES + 1} tries: {_failure(deployment, spec.dag_id)}"
                self.progress(f"  {error}")
            elif mapped and len(succeeded) * 2 >= len(mapped):
                # The deferral race (see _dags_provider.py) can outlast the task's retries: the
                # calls whose task instances succeeded are what the run achieved, said as such.
                calls = len(succeeded)
                error = (
                    f"{len(mapped) - calls} of {len(mapped)} task instances failed, each after "
                    f"{RETRIES + 1} tries (the scheduler's deferral race)"
                )
                self.progress(f"  {error}")
            else:
                raise RuntimeError(
                    f"DAG run {run_id} of {spec.dag_id} ended {run['state']}\n"
                    f"{deployment.airflow.diagnostics()}"
                )
        details: dict[str, Any] = {
            "dag_run_seconds": run_seconds(run),
            "task_instances": len(tis),
            "states": sorted({ti["state"] for ti in tis}),
            # task instances that needed a task retry (the deferral race, see _dags_provider.py)
            "retried": sum(1 for ti in tis if ti["try_number"] > 1),
            # the whole window, before the idle deployment's writes outside the run were taken off
            "db_window": raw.as_dict(),
        }
        received = 0
        if error is None or mapped:
            received = self._check(spec, run_id, succeeded if mapped else tis)
            main = [ti for ti in tis if ti["task_id"] == spec.task_id]
            if len(main) == 1:
                details["ti_seconds"] = ti_seconds(main[0])
        wall = details["dag_run_seconds"]
        row = Measurement(
            key=spec.key,
            number=spec.number,
            label=spec.label,
            link=self.link.name,
            calls=calls,
            job=spec.job,
            bytes=received,
            wall=wall,
            cpu=cpu,
            peak_rss=rss.peak,
            server_cpu=server_cpu,
            proxy_cpu=proxy_cpu,
            other_cpu=max(0.0, busy - cpu - server_cpu - db_cpu - proxy_cpu),
            db_cpu=db_cpu,
            db=load.as_dict(),
            error=error,
            details=details,
        )
        return row, after

    def _wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """The run once it succeeded or failed, asked for every POLL_SECONDS."""

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = self.deployment.airflow.api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(POLL_SECONDS)
            return None

        found: dict[str, Any] = self.deployment.wait(
            f"dag run {run_id} of {dag_id} to finish", finished, timeout
        )
        return found

    def _check(self, spec: DagSpec, run_id: str, tis: list[dict[str, Any]]) -> int:
        """What the run returned, checked against what the server serves; the bytes received."""
        deployment = self.deployment
        if spec.kind == "pages":
            ids = deployment.xcom(spec.dag_id, run_id, spec.task_id)
            wanted = list(range(1, spec.calls * PAGE_SIZE + 1))
            if ids != wanted:
                raise RuntimeError(f"{spec.dag_id} listed {len(ids)} ids, expected {len(wanted)}")
            return 0
        if spec.task_id == "get":
            # Map index i called record i + 1; only the task instances that succeeded are checked.
            ids = [ti["map_index"] + 1 for ti in tis if ti["task_id"] == "get" and ti["state"] == "success"]
            sizes = [deployment.xcom(spec.dag_id, run_id, "get", map_index=i - 1) for i in ids]
        else:
            ids = list(range(1, spec.calls + 1))
            sizes = deployment.xcom(spec.dag_id, run_id, spec.task_id)
        expected = sum(len(record_bytes(i)) for i in ids)
        if sum(sizes) != expected or len(sizes) != len(ids):
            raise RuntimeError(
                f"{spec.dag_id}: {len(sizes)} calls, {sum(sizes):,} bytes; expected {expected:,}"
            )
        return expected
