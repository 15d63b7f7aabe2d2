"""Rows 3-6: each measured in a subprocess of its own, with the server's and the machine's CPU around it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._measured import least_disturbed
from benchmarks._profiling import under_py_spy
from benchmarks.sftp._accounting import cpu_between, cpu_snapshot, machine_busy, run_accounted, self_cpu

from ._config import FEWER_CONNECTIONS, HOOK_CONCURRENCY, RAW_CONCURRENCY, Sizes
from ._postgres import DbLoad, PostgresServer
from ._results import Measurement
from ._servers import Link, Servers, expected_bytes

#: per-row limit: the slowest row makes about 25 calls a second
TIMEOUT_BASE = 300.0
TIMEOUT_PER_CALL = 0.1


@dataclass(frozen=True)
class RowSpec:
    key: str
    number: str
    label: str
    #: the subprocess entry point: "_client_main" (plain process) or "_dagtest" (dag.test())
    module: str
    count: int
    args: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


def row_specs(sizes: Sizes) -> list[RowSpec]:
    return [
        RowSpec(
            "hook_sync",
            "3",
            "sync `HttpHook` loop: `run()` per call (a `requests` session, so a connection, each)",
            "_client_main",
            sizes.hook_sync,
            ("hook_sync",),
        ),
        RowSpec(
            "hook_async_per_call",
            "4",
            f"async `HttpAsyncHook.run()` per call, a `ClientSession` each (as `HttpTrigger`), "
            f"`Semaphore({HOOK_CONCURRENCY})`",
            "_client_main",
            sizes.hook_async_per_call,
            ("hook_async_per_call", f"--concurrency={HOOK_CONCURRENCY}"),
        ),
        RowSpec(
            "hook_async_session",
            "4",
            f"async `HttpAsyncHook.session()` shared by every call, `Semaphore({HOOK_CONCURRENCY})`",
            "_client_main",
            sizes.calls,
            ("hook_async_session", f"--concurrency={HOOK_CONCURRENCY}"),
        ),
        RowSpec(
            "iterate",
            "5",
            "**`.iterate()` + `airflow_iterate.http`, defaults**: one task instance (`dag.test()`)",
            "_dagtest",
            sizes.calls,
        ),
        RowSpec(
            "iterate_fewer_connections",
            "5",
            f"`.iterate()` as above with `HTTPClient.shared(conn_id, max_connections_per_host="
            f"{FEWER_CONNECTIONS})`: {HOOK_CONCURRENCY} items share {FEWER_CONNECTIONS} connections",
            "_dagtest",
            sizes.calls,
            (f"--per-host={FEWER_CONNECTIONS}",),
        ),
        RowSpec(
            "raw_httpx",
            "6",
            f"raw httpx, hand-tuned: {RAW_CONCURRENCY['httpx']} connections and calls in flight, no Airflow",
            "_client_main",
            sizes.raw_httpx,
            ("raw_httpx", f"--concurrency={RAW_CONCURRENCY['httpx']}"),
            {"client": "httpx"},
        ),
        RowSpec(
            "task_raw_aiohttp",
            "6",
            f"raw aiohttp as below ({RAW_CONCURRENCY['aiohttp']} in flight), inside one `@task async def` "
            "(`dag.test()`): the task instance's own cost, without `.iterate()`",
            "_dagtest",
            sizes.calls,
            (f"--raw-in-task={RAW_CONCURRENCY['aiohttp']}",),
        ),
        RowSpec(
            "raw_aiohttp",
            "6",
            f"raw aiohttp, hand-tuned: {RAW_CONCURRENCY['aiohttp']} connections and calls in flight, "
            "no Airflow",
            "_client_main",
            sizes.calls,
            ("raw_aiohttp", f"--concurrency={RAW_CONCURRENCY['aiohttp']}"),
            {"client": "aiohttp"},
        ),
    ]


class RowRunner:
    def __init__(
        self,
        servers: Servers,
        postgres: PostgresServer,
        log_dir: Path,
        attempts: int,
        progress: Callable[[str], None],
        *,
        job: int,
        profile: str | None = None,
    ) -> None:
        #: the job size every row stands for
        self.job = job
        self.servers = servers
        self.postgres = postgres
        self.attempts = attempts
        self.profile = profile
        self.log_dir = log_dir
        self.progress = progress
        self.env = {**os.environ, **servers.environment()}

    def measure(self, spec: RowSpec, link: Link) -> Measurement:
        return least_disturbed(lambda attempt: self._once(spec, link, attempt), self.attempts, self.progress)

    def _once(self, spec: RowSpec, link: Link, attempt: int) -> Measurement:
        count = spec.count
        self.progress(f"row {spec.number} {spec.key}: {count:,} calls, {link.rtt_ms:g} ms RTT")
        name = f"{spec.key}-{link.name}-{attempt}"
        json_out = self.log_dir / f"{name}.json"
        command = [
            sys.executable,
            "-m",
            f"benchmarks.http.{spec.module}",
            *spec.args,
            f"--conn-id={link.conn_id}",
            f"--count={count}",
            f"--json-out={json_out}",
        ]
        if spec.module == "_dagtest":
            command += [
                f"--dags-folder={os.environ['AIRFLOW__CORE__DAGS_FOLDER']}",
                f"--dag-id=http_iterate_{name}",
            ]
        else:
            command.append(f"--base-url={link.base_url}")
        if self.profile is not None:
            command, profile = under_py_spy(command, self.profile, self.log_dir / name)
            self.progress(f"  profiling into {profile}")
        uses_db = spec.module == "_dagtest"
        db_before = self.postgres.stats() if uses_db else None
        server_before = cpu_snapshot([self.servers.server_pid()])
        db_cpu_before = cpu_snapshot([self.postgres.pid]) if uses_db else {}
        busy_before, own_before = machine_busy(), self_cpu()
        usage = run_accounted(
            command,
            log_path=self.log_dir / f"{name}.log",
            env=self.env,
            cwd=os.getcwd(),
            timeout=TIMEOUT_BASE + TIMEOUT_PER_CALL * count,
        )
        busy, own = machine_busy() - busy_before, self_cpu() - own_before
        server_cpu = cpu_between(server_before, cpu_snapshot([self.servers.server_pid()]))
        db: dict[str, Any] | None = None
        db_cpu = 0.0
        if db_before is not None:
            # The row's process has exited: its backends published their counts as they ended.
            self.postgres.wait_no_clients()
            db = DbLoad.between(db_before, self.postgres.stats()).as_dict()
            db_cpu = cpu_between(db_cpu_before, cpu_snapshot([self.postgres.pid]))
        if usage.returncode != 0:
            tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"row {spec.key} failed (exit {usage.returncode}):\n{tail}")
        result = json.loads(json_out.read_text())
        details = {**spec.details, "process_wall": usage.wall_seconds, "process_cpu": usage.cpu_seconds}
        if spec.module == "_dagtest":
            run = result["runs"][0]
            # The task instance's own recorded duration, as the UI shows it; execute() is the run
            # of the items inside it.
            wall, cpu, received = run["ti_duration"], run["cpu"], run["bytes"]
            details.update(execute_seconds=run["seconds"], dag_test_wall=run["dag_test_wall"])
        else:
            wall, cpu, received = result["wall"], result["cpu"], result["bytes"]
        expected = expected_bytes(count)
        if received != expected:
            raise RuntimeError(f"row {spec.key} received {received:,} bytes, expected {expected:,}")
        return Measurement(
            key=spec.key,
            number=spec.number,
            label=spec.label,
            link=link.name,
            calls=count,
            job=self.job,
            bytes=received,
            wall=wall,
            cpu=cpu,
            peak_rss=usage.peak_rss,
            server_cpu=server_cpu,
            proxy_cpu=own,
            other_cpu=max(0.0, busy - usage.cpu_seconds - server_cpu - own - db_cpu),
            db_cpu=db_cpu,
            db=db,
            details=details,
        )
