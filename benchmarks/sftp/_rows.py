"""Rows 2-6: each measured in a subprocess of its own, with the server's and the machine's CPU around it."""

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

from ._accounting import ProcessUsage, cpu_between, cpu_snapshot, machine_busy, run_accounted, self_cpu
from ._config import (
    HOOK_ASYNC_CONCURRENCY,
    LOW_CONCURRENCY,
    PROVIDER_POOL_SIZES,
    RAW_CONNECTIONS,
    RAW_IN_FLIGHT,
    Sizes,
)
from ._data import DataSet
from ._results import Measurement
from ._servers import Link, Servers

#: per-row limit: the slowest approach reads about 7 files/s
TIMEOUT_BASE = 300.0
TIMEOUT_PER_FILE = 1.0


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
    cores = os.cpu_count() or 1
    specs = [
        RowSpec(
            "hook_sync",
            "2",
            "sync `SFTPHook` loop: one connection, one file at a time",
            "_client_main",
            sizes.hook_sync,
            ("hook_sync",),
        ),
        RowSpec(
            "hook_async",
            "3",
            f"async, `SFTPHookAsync` per file (a connection each, no pool), "
            f"{HOOK_ASYNC_CONCURRENCY} at a time",
            "_client_main",
            sizes.hook_async,
            ("hook_async",),
        ),
        RowSpec(
            "provider_default",
            "4",
            f"async, provider `SFTPClientPool`, default `pool_size` ({cores})",
            "_client_main",
            sizes.provider_default,
            ("provider_pool",),
            {"pool_size": cores},
        ),
    ]
    specs += [
        RowSpec(
            f"provider_{size}",
            "4",
            f"async, provider `SFTPClientPool`, `pool_size={size}`",
            "_client_main",
            sizes.files,
            ("provider_pool", "--pool-size", str(size)),
            {"pool_size": size},
        )
        for size in PROVIDER_POOL_SIZES
    ]
    specs += [
        RowSpec(
            "iterate_default",
            "5",
            "`.iterate()` + `SFTPPool.shared()` + `download_bytes`, all defaults (128 in flight)",
            "_dagtest",
            sizes.files,
        ),
        RowSpec(
            "iterate_c32",
            "5",
            f"`.iterate()` as above with `concurrency={LOW_CONCURRENCY}`",
            "_dagtest",
            sizes.files,
            ("--concurrency", str(LOW_CONCURRENCY)),
        ),
    ]
    specs.append(
        RowSpec(
            "raw",
            "6",
            f"raw asyncssh, hand-tuned: {RAW_CONNECTIONS} connections, {RAW_IN_FLIGHT} reads in flight, "
            "AES-GCM, no Airflow",
            "_client_main",
            sizes.files,
            ("raw",),
        )
    )
    return specs


class RowRunner:
    def __init__(
        self,
        servers: Servers,
        data: DataSet,
        log_dir: Path,
        attempts: int,
        progress: Callable[[str], None],
        *,
        profile: str | None = None,
    ) -> None:
        self.servers = servers
        self.attempts = attempts
        #: run each row under py-spy, writing its output in this format (one of _profiling.PROFILE_FORMATS)
        #: next to its log; timings suffer
        self.profile = profile
        self.data = data
        self.log_dir = log_dir
        self.progress = progress
        self.env = {**os.environ, **servers.environment()}

    def measure(self, spec: RowSpec, link: Link) -> Measurement:
        return least_disturbed(lambda attempt: self._once(spec, link, attempt), self.attempts, self.progress)

    def _once(self, spec: RowSpec, link: Link, attempt: int) -> Measurement:
        count = min(spec.count, len(self.data.paths))
        self.progress(f"row {spec.number} {spec.key}: {count:,} files, {link.rtt_ms:g} ms RTT")
        name = f"{spec.key}-{link.name}-{attempt}"
        json_out = self.log_dir / f"{name}.json"
        command = [
            sys.executable,
            "-m",
            f"benchmarks.sftp.{spec.module}",
            *spec.args,
            f"--conn-id={link.conn_id}",
            f"--manifest={self.data.root / 'manifest.json'}",
            f"--count={count}",
            f"--json-out={json_out}",
        ]
        if spec.module == "_dagtest":
            command.append(f"--dags-folder={os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
        if self.profile is not None:
            command, profile = under_py_spy(command, self.profile, self.log_dir / name)
            self.progress(f"  profiling into {profile}")
        sshd_before = cpu_snapshot([self.servers.listener_pid()])
        busy_before, own_before = machine_busy(), self_cpu()
        usage = run_accounted(
            command,
            log_path=self.log_dir / f"{name}.log",
            env=self.env,
            cwd=os.getcwd(),
            timeout=TIMEOUT_BASE + TIMEOUT_PER_FILE * count,
        )
        busy, own = machine_busy() - busy_before, self_cpu() - own_before
        self.servers.wait_sessions_gone()
        sshd_cpu = cpu_between(sshd_before, cpu_snapshot([self.servers.listener_pid()]))
        if usage.returncode != 0:
            tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"row {spec.key} failed (exit {usage.returncode}):\n{tail}")
        result = json.loads(json_out.read_text())
        return self._measurement(spec, link, count, result, usage, sshd_cpu, own, busy)

    def _measurement(
        self,
        spec: RowSpec,
        link: Link,
        count: int,
        result: dict[str, Any],
        usage: ProcessUsage,
        sshd_cpu: float,
        own: float,
        busy: float,
    ) -> Measurement:
        details = {
            **spec.details,
            "process_wall": usage.wall_seconds,
            "process_cpu": usage.cpu_seconds,
        }
        if spec.module == "_dagtest":
            run = result["runs"][0]
            # The task instance's own recorded duration, as the UI shows it; execute() is the run
            # of the items inside it.
            wall, cpu, read = run["ti_duration"], run["cpu"], run["bytes"]
            details.update(execute_seconds=run["seconds"], dag_test_wall=run["dag_test_wall"])
        else:
            wall, cpu, read = result["wall"], result["cpu"], result["bytes"]
        expected = sum(self.data.sizes[:count])
        if read != expected:
            raise RuntimeError(f"row {spec.key} read {read:,} bytes, expected {expected:,}")
        return Measurement(
            key=spec.key,
            number=spec.number,
            label=spec.label,
            link=link.name,
            files=count,
            bytes=read,
            wall=wall,
            cpu=cpu,
            peak_rss=usage.peak_rss,
            sshd_cpu=sshd_cpu,
            proxy_cpu=own,
            other_cpu=max(0.0, busy - usage.cpu_seconds - sshd_cpu - own),
            details=details,
        )
