"""A throwaway Airflow deployment for end-to-end tests: api-server, scheduler and dag-processor.

Everything lives in one temporary AIRFLOW_HOME (SQLite metadata DB, LocalExecutor unless told
otherwise, a copy of the test DAGs). Components are real ``airflow`` CLI subprocesses configured
only through their environment, so the test process never imports Airflow or touches its
configuration.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.25
MIGRATE_TIMEOUT = 180.0
API_READY_TIMEOUT = 90.0
COMPONENTS_HEALTHY_TIMEOUT = 60.0
DAG_PARSED_TIMEOUT = 60.0
SHUTDOWN_GRACE = 10.0
LOG_TAIL_LINES = 60
TASK_LOG_TAIL_LINES = 40
MAX_TASK_LOGS_IN_REPORT = 8


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def is_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True)
class Listener:
    component: str
    pid: int
    process_name: str
    protocol: str
    ip: str
    port: int

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.ip)

    def __str__(self) -> str:
        return f"{self.component}: pid {self.pid} ({self.process_name}) {self.protocol} {self.ip}:{self.port}"


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float

    def tree(self) -> list[psutil.Process]:
        """The component's process and its descendants, as far as they still exist (zombies included)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


class ApiError(AssertionError):
    """An API call answered with an unexpected status; retried while waiting for readiness."""


class ApiClient:
    """REST API client that authenticates once through SimpleAuthManager's token endpoint."""

    def __init__(self, base_url: str, username: str = "e2e", password: str = "e2e") -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        # In all-admins mode the credentials are not checked, but the body must still carry both fields.
        self.username = username
        self.password = password

    def login(self) -> None:
        self.http.headers["Authorization"] = f"Bearer {self.token(self.username, self.password)}"

    def token(self, username: str, password: str) -> str:
        """A JWT for a user (``POST /auth/token``), without changing this client's own."""
        response = self.http.post("/auth/token", json={"username": username, "password": password})
        if response.status_code != 201:
            raise ApiError(f"POST /auth/token as {username}: {response.status_code} {response.text}")
        token: str = response.json()["access_token"]
        return token

    def request(self, method: str, path: str, expected: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code != expected:
            raise ApiError(
                f"{method} {path}: expected HTTP {expected}, "
                f"got {response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def close(self) -> None:
        self.http.close()


class AirflowDeployment:
    """Starts, inspects and stops the components; every wait is bounded and reports component logs."""

    def __init__(
        self,
        home: Path,
        dags_source: Path,
        *,
        executor: str = "LocalExecutor",
        extra_env: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        """``users``: SimpleAuthManager's users (name: role, the first one an admin the API client
        logs in as), each with a random password (:attr:`passwords`); without them every request
        is an admin's (all-admins mode, where nothing is ever unauthenticated)."""
        self.home = home
        self.executor = executor
        self.users = dict(users or {})
        self.passwords = {name: secrets.token_urlsafe(12) for name in self.users}
        self.dags_folder = home / "dags"
        self.port = free_loopback_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.components: list[Component] = []
        self.extra_logs: list[Path] = []
        #: components the test killed on purpose: their exit is no failure
        self.killed: set[str] = set()
        shutil.copytree(dags_source, self.dags_folder, ignore=shutil.ignore_patterns("__pycache__"))
        self.env = {**self._environment(), **(extra_env or {})}
        if self.users:
            admin = next(iter(self.users))
            self.api = ApiClient(self.base_url, admin, self.passwords[admin])
        else:
            self.api = ApiClient(self.base_url)

    # -- configuration ----------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        # Settings inherited from the caller (e.g. unit-test mode or an AIRFLOW_HOME set for
        # in-process tests) would silently change what the deployment runs, so none are kept.
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # Workers get their execution-API tokens from the scheduler and present them to the
                # api-server: both must share the signing secret.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API__HOST": LOOPBACK,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                # The defaults (minutes) would make a freshly copied DAG file show up far too late.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
                # The scheduler's health-check server would listen on all interfaces.
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.users:
            passwords = self.home / "simple_auth_manager_passwords.json"
            passwords.write_text(json.dumps(self.passwords))
            env.update(
                {
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                        f"{name}:{role}" for name, role in self.users.items()
                    ),
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                }
            )
        return env

    def airflow_command(self, *args: str) -> list[str]:
        # The interpreter running the tests is the one with Airflow and this package installed;
        # `python -m airflow` avoids depending on the console script being on PATH.
        return [sys.executable, "-m", "airflow", *args]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, expected_dag_ids: Iterable[str]) -> None:
        self._migrate()
        self._spawn(
            "api-server", "api-server", "--host", LOOPBACK, "--port", str(self.port), "--workers", "1"
        )
        # Without --skip-serve-logs the scheduler forks a log server bound to 0.0.0.0:8793.
        self._spawn("scheduler", "scheduler", "--skip-serve-logs")
        self._spawn("dag-processor", "dag-processor")
        self.wait_for("the api-server to answer /api/v2/monitor/health", self._api_health, API_READY_TIMEOUT)
        self.api.login()
        self.wait_for(
            "the scheduler and dag-processor to report healthy",
            self._components_healthy,
            COMPONENTS_HEALTHY_TIMEOUT,
        )
        for dag_id in expected_dag_ids:
            self.wait_for(
                f"DAG {dag_id!r} to be parsed and served by the API",
                functools.partial(self._dag_available, dag_id),
                DAG_PARSED_TIMEOUT,
            )

    def _migrate(self) -> None:
        log_path = self.home / "db-migrate.log"
        self.extra_logs.append(log_path)
        with log_path.open("wb") as log:
            try:
                result = subprocess.run(
                    self.airflow_command("db", "migrate"),
                    env=self.env,
                    cwd=self.home,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=MIGRATE_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"`airflow db migrate` did not finish within {MIGRATE_TIMEOUT:.0f}s\n{self.diagnostics()}"
                ) from None
        assert result.returncode == 0, (
            f"`airflow db migrate` exited with {result.returncode}\n{self.diagnostics()}"
        )

    def _spawn(self, name: str, *args: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.spawn_process(name, self.airflow_command(*args), extra_env=extra_env)

    def spawn_process(
        self, name: str, command: Sequence[str], *, extra_env: Mapping[str, str] | None = None
    ) -> Component:
        """Start ``command`` as a component: logged, inspected, waited on and stopped like the others."""
        log_path = self.home / f"{name}.log"
        launched = time.time()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(command),
                env={**self.env, **(extra_env or {})},
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: a stray grandchild that outlives its parent is still reachable.
                start_new_session=True,
            )
        component = Component(name, process, log_path, _create_time(process.pid, launched))
        self.components.append(component)
        return component

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def kill(self, name: str) -> list[int]:
        """SIGKILL a component's whole process tree at once, as a crashed machine would; returns the PIDs."""
        self.killed.add(name)
        procs = self.component(name).tree()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10.0)
        return [proc.pid for proc in procs]

    def stop(self) -> None:
        """Terminate every component's whole process tree; SIGKILL whatever outlives the grace period."""
        self.api.close()
        known = self._process_trees()
        running = [c for c in self.components if c.process.poll() is None]
        # SIGTERM to the roots only, so each component shuts its own children down in order.
        for component in running:
            with contextlib.suppress(ProcessLookupError):
                component.process.terminate()
        deadline = time.monotonic() + SHUTDOWN_GRACE
        stubborn = []
        for component in running:
            try:
                component.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stubborn.append(component.name)
        if stubborn:
            # Expected now and then: Airflow 3.3's LocalExecutor can hang joining an idle worker on
            # shutdown. Recorded rather than raised, for whoever wonders why teardown was slow.
            with (self.home / "teardown.log").open("a") as log:
                log.write(f"killed after {SHUTDOWN_GRACE:.0f}s grace: {', '.join(stubborn)}\n")
        # Children forked after the first snapshot, and orphans whose parent exited already.
        known.update(self._process_trees())
        known.update(self._process_group_members())
        survivors = [proc for proc in known.values() if _alive(proc)]
        for proc in survivors:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(survivors, timeout=5.0)
        for component in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                component.process.wait(timeout=5.0)

    def _process_trees(self) -> dict[int, psutil.Process]:
        return {proc.pid: proc for component in self.components for proc in component.tree()}

    def _process_group_members(self) -> dict[int, psutil.Process]:
        """Processes still in a component's process group, even if no longer its descendants."""
        # Linux never hands out a PID that is still some group's ID, so a process whose group ID
        # is a component's PID belongs to that component; the start-time check covers the case
        # where the group is gone and the number was reused.
        groups = {c.process.pid: c.started for c in self.components}
        members: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter():
            try:
                started = groups.get(os.getpgid(proc.pid))
                if started is not None and proc.create_time() >= started:
                    members[proc.pid] = proc
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return members

    # -- readiness probes ------------------------------------------------------------------------

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """Poll ``probe`` until it returns something other than None; fail early if a component dies.

        ``probe`` may raise transport or API errors while a server is still coming up; the last one
        is reported if the wait times out. Any other exception (a plain AssertionError for a
        condition that cannot heal) ends the wait at once.
        """
        deadline = time.monotonic() + timeout
        last_error = "none"
        while True:
            try:
                result = probe()
            except (httpx.TransportError, ApiError, KeyError, ValueError) as exc:
                result = None
                last_error = f"{type(exc).__name__}: {exc}"
            if result is not None:
                return result
            dead = [c for c in self.components if c.process.poll() is not None and c.name not in self.killed]
            if dead:
                exits = ", ".join(f"{c.name} (exit code {c.process.returncode})" for c in dead)
                raise AssertionError(f"while waiting for {what}: {exits} exited\n{self.diagnostics()}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}; last probe error: {last_error}\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(POLL_INTERVAL)

    # -- DAG runs through the REST API --------------------------------------------------------------

    def trigger(self, dag_id: str, prefix: str = "e2e") -> str:
        """Unpause ``dag_id`` and start a run of it; returns the run id."""
        self.api.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        run_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.api.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None}
        )
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """The run, once it has succeeded or failed."""

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = self.api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        return self.wait_for(f"dag run {run_id} of {dag_id} to finish", finished, timeout)

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        entry = self.api.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            map_index=map_index,
            deserialize=True,
        )
        return entry["value"]

    def _api_health(self) -> dict[str, Any] | None:
        response = self.api.http.get("/api/v2/monitor/health")
        if response.status_code != 200:
            return None
        health: dict[str, Any] = response.json()
        return health if health["metadatabase"]["status"] == "healthy" else None

    def _components_healthy(self) -> bool | None:
        health = self.api.get("/api/v2/monitor/health")
        wanted = (health["scheduler"], health.get("dag_processor") or {})
        return True if all(part.get("status") == "healthy" for part in wanted) else None

    def _dag_available(self, dag_id: str) -> dict[str, Any] | None:
        errors = self.api.get("/api/v2/importErrors")["import_errors"]
        if errors:
            # Fail at once: a DAG file that does not import will never appear, however long we wait.
            details = "\n\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
            raise AssertionError(f"DAG import errors:\n{details}\n{self.diagnostics()}")
        response = self.api.http.get(f"/api/v2/dags/{dag_id}")
        if response.status_code != 200:
            return None
        dag: dict[str, Any] = response.json()
        return dag

    # -- inspection ------------------------------------------------------------------------------

    def listeners(self) -> list[Listener]:
        """Every listening TCP socket and unconnected bound UDP socket of the components' trees."""
        found: list[Listener] = []
        for component in self.components:
            for proc in component.tree():
                try:
                    connections = proc.net_connections(kind="inet")
                    process_name = proc.name()
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue
                for conn in connections:
                    if conn.type == socket.SOCK_STREAM and conn.status != psutil.CONN_LISTEN:
                        continue
                    if conn.type == socket.SOCK_DGRAM and conn.raddr:
                        continue
                    protocol = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
                    found.append(
                        Listener(
                            component.name, proc.pid, process_name, protocol, conn.laddr.ip, conn.laddr.port
                        )
                    )
        return found

    def task_logs(self) -> Iterator[Path]:
        logs = self.home / "logs"
        if logs.is_dir():
            yield from sorted(p for p in logs.rglob("*") if p.is_file() and "dag_id=" in str(p))

    def diagnostics(self) -> str:
        """Tail of every component's log (and of any task logs), for assertion messages."""
        sections = []
        for path in self.extra_logs:
            sections.append(
                f"----- {path.name} (last {LOG_TAIL_LINES} lines) -----\n{tail(path, LOG_TAIL_LINES)}"
            )
        for component in self.components:
            state = (
                "running" if component.process.poll() is None else f"exited {component.process.returncode}"
            )
            if component.name in self.killed:
                state += ", killed by the test"
            sections.append(
                f"----- {component.name} [{state}] {component.log_path} (last {LOG_TAIL_LINES} lines) -----\n"
                f"{tail(component.log_path, LOG_TAIL_LINES)}"
            )
        for path in list(self.task_logs())[-MAX_TASK_LOGS_IN_REPORT:]:
            relative = path.relative_to(self.home)
            sections.append(
                f"----- task log {relative} (last {TASK_LOG_TAIL_LINES} lines) -----\n"
                f"{tail(path, TASK_LOG_TAIL_LINES)}"
            )
        return "\n".join(sections)


def _create_time(pid: int, launched: float) -> float:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        # Exited already; its children, if any, cannot be older than the launch.
        return launched


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
