"""A real CeleryExecutor deployment: Redis, scheduler, api-server, dag-processor and Celery workers.

Redis is Debian's ``redis-server`` in the foreground on a free loopback port, nothing persisted;
it is the broker and the result backend. The metadata DB stays SQLite: in Airflow 3 workers never
open it (they talk to the api-server), so only the scheduler, api-server and dag-processor do, as
with the LocalExecutor. Each worker runs one task at a time, serves no logs (their files are on
this machine for the api-server to read) and reports its own name as the task instances' hostname.

Shared by the Celery end-to-end tests and ``benchmarks/scaleout``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.e2e._deployment import LOOPBACK, AirflowDeployment, free_loopback_port

WORKER_SITE = Path(__file__).parent / "worker_site"
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_READY_TIMEOUT = 30.0
WORKER_READY_TIMEOUT = 90.0


class CeleryUnavailable(RuntimeError):
    """The celery provider is not installed in this virtualenv."""


def redis_answers(port: int) -> bool | None:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2.0) as sock:
            sock.sendall(b"PING\r\n")
            return True if sock.recv(64).startswith(b"+PONG") else None
    except OSError:  # not listening yet
        return None


def worker_ready(log: Path) -> bool | None:
    # Celery's own start-up line, printed once the worker consumes from the broker.
    return True if log.exists() and " ready." in log.read_text(errors="replace") else None


def start_celery_deployment(
    home: Path,
    dags_source: Path,
    dag_ids: Iterable[str],
    workers: Mapping[str, Iterable[str]],
    *,
    extra_env: Mapping[str, str] | None = None,
) -> AirflowDeployment:
    """Start Redis, the Airflow components and one Celery worker per ``workers`` entry.

    ``workers`` maps a worker's name (also the hostname its task instances report) to the queues
    it consumes. The caller stops the returned deployment; a failed start stops what it started.
    """
    try:
        importlib.metadata.version("apache-airflow-providers-celery")
    except importlib.metadata.PackageNotFoundError:
        raise CeleryUnavailable(
            "apache-airflow-providers-celery is not installed (see requirements/dev.txt)"
        ) from None
    if not os.access(REDIS_SERVER, os.X_OK):
        raise RuntimeError(
            f"{REDIS_SERVER} is missing: run `bash .ci/install-system-packages` (Debian redis-server)"
        )

    redis_port = free_loopback_port()
    redis_url = f"redis://{LOOPBACK}:{redis_port}"
    deployment = AirflowDeployment(
        home,
        dags_source,
        executor="CeleryExecutor",
        extra_env={
            "AIRFLOW__CELERY__BROKER_URL": f"{redis_url}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis_url}/1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            # A worker that dies mid-task stops heartbeating; the scheduler notices within seconds
            # (instead of the default five minutes) and the task's retry goes to another worker.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
            **(extra_env or {}),
        },
    )
    try:
        deployment.spawn_process(
            "redis-server",
            [
                REDIS_SERVER,
                "--port", str(redis_port),
                "--bind", LOOPBACK,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(deployment.home),
            ],
        )  # fmt: skip
        deployment.wait_for(
            "redis-server to answer PING", functools.partial(redis_answers, redis_port), REDIS_READY_TIMEOUT
        )
        deployment.start(dag_ids)
        python_path = os.pathsep.join(filter(None, [str(WORKER_SITE), os.environ.get("PYTHONPATH")]))
        for name, queues in workers.items():
            deployment.spawn_process(
                name,
                deployment.airflow_command(
                    "celery", "worker",
                    "--celery-hostname", f"{name}@%h",
                    "--queues", ",".join(queues),
                    "--concurrency", "1",
                    # Without it each worker forks a log server bound to 0.0.0.0:8793.
                    "--skip-serve-logs",
                    "--pid", str(deployment.home / f"{name}.pid"),
                    "--without-mingle",
                    "--without-gossip",
                ),
                extra_env={
                    "E2E_WORKER_NAME": name,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "e2e_worker_identity.hostname",
                    "PYTHONPATH": python_path,
                },
            )  # fmt: skip
        for name in workers:
            log = deployment.component(name).log_path
            deployment.wait_for(
                f"{name} to be ready", functools.partial(worker_ready, log), WORKER_READY_TIMEOUT
            )
    except BaseException:
        deployment.stop()
        raise
    return deployment
