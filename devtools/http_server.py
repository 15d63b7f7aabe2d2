"""A real HTTP server on 127.0.0.1 for the HTTP tests, the demo and the benchmark.

A small ASGI app (JSON records of 2–10 KB, listings paginated four ways, a per-client rate limit
answering 429 with ``Retry-After``, a capacity answering 503 beyond N requests in flight, latency
that can grow with load, a large body streamed without being held) served by uvicorn, as
Airflow's own api-server is, in a process of its own in the foreground (as ``devtools.sshd`` runs
sshd). The server counts connections and records when each request arrived, on which connection,
from which client, so tests can assert connection bounds and the timing of retries. With
``tls=True`` it serves HTTPS with a certificate of a CA made at start (:attr:`ca_path`).

::

    with HTTPTestServer(records=500, rate_limit=50, burst=5) as server:
        server.url                       # "http://127.0.0.1:<port>"
        ...                              # requests from the code under test
        server.stats().connections_peak  # connections open at once, at most
        [r.time for r in server.requests("/flaky/a")]   # arrival times (time.time())
        server.configure(capacity=4)     # change behaviour while it runs
        server.reset()                   # back to the start settings, counters and records cleared

Put a :class:`devtools.delay_proxy.DelayProxy` in front of it for round-trip time
(``DelayProxy(server.host, server.port, delay=0.010)``: 20 ms RTT) and to cut connections.

The API's routes are listed in ``devtools/_http_app.py``; the records and the large body are
reproducible here with :func:`record`, :func:`record_bytes` and :func:`large_body_sha256`. The
admin API (``GET /stats``, ``GET /requests``, ``POST /reset``, ``POST /configure``) has a port of
its own (:attr:`admin_port`), so watching the server never shows in its counts.

Run it by hand with ``python -m devtools.http_server`` (prints its URL, serves until Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._http_app import ServerSettings
from ._http_data import large_body, large_body_sha256, record, record_bytes, record_summary
from ._tls import make_tls_files

__all__ = [
    "HTTPTestServer",
    "RequestRecord",
    "ServerSettings",
    "ServerStats",
    "large_body",
    "large_body_sha256",
    "record",
    "record_bytes",
    "record_summary",
]

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ADMIN_TIMEOUT = 10.0
POLL_INTERVAL = 0.02
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ServerStats:
    """What the server counted since it started (or since :meth:`HTTPTestServer.reset`)."""

    #: connections accepted
    connections_opened: int
    #: connections open now
    connections_open: int
    #: connections open at once, at most
    connections_peak: int
    #: requests received (including the ones answered 401, 429 or 503)
    requests: int
    in_flight: int
    in_flight_peak: int
    #: answers by status
    statuses: dict[int, int]
    #: records created by ``POST /records``
    created: int


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server received it."""

    #: its number (1 for the first request after a start or reset)
    seq: int
    #: when it arrived, ``time.time()`` on the server
    time: float
    method: str
    #: path and query string
    path: str
    #: the number of the connection it came on (1 for the first connection accepted)
    connection: int | None
    #: its ``X-Client-Id`` header
    client: str | None
    #: how it authenticated: ``None``, ``"basic:<user>"``, ``"bearer"`` (``":wrong"`` appended
    #: for refused credentials); never the secret itself
    auth: str | None
    http_version: str | None
    #: what the server answered (``None`` while in flight)
    status: int | None


class HTTPTestServer:
    """The server process; :meth:`start` / :meth:`stop` / :meth:`restart` keep the same port.

    :param directory: where its files go (settings, log, TLS files); a temporary directory,
        removed by :meth:`close`, by default.
    :param port: the API's port (0: any free one, kept across restarts).
    :param settings: :class:`ServerSettings` fields (``records``, ``rate_limit``, ``burst``,
        ``retry_after``, ``capacity``, ``overload_retry_after``, ``latency_ms``,
        ``latency_per_request_ms``, ``basic_auth``, ``bearer_token``, ``record_requests``,
        ``tls``, ``keep_alive_timeout``).
    """

    def __init__(self, directory: Path | None = None, *, port: int = 0, **settings: Any) -> None:
        known = {f.name for f in fields(ServerSettings)}
        unknown = set(settings) - known
        if unknown:
            raise TypeError(f"unknown server settings: {', '.join(sorted(unknown))}")
        self.settings = ServerSettings(**settings)
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="airflow-iterate-http-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = LOOPBACK
        self.port = port
        self.admin_port = 0
        self.log_path = self.directory / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.ca_path: Path | None = None
        if self.settings.tls:
            self.ca_path = make_tls_files(self.directory / "tls").ca

    # -- what clients need ----------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.settings.tls else "http"

    @property
    def url(self) -> str:
        """The API's base URL, ``http(s)://127.0.0.1:<port>``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process's id (for its CPU time), while it runs."""
        return self._process.pid if self.running else None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> HTTPTestServer:
        if self.running:
            return self
        settings_file = self.directory / "settings.json"
        settings_file.write_text(json.dumps(self.settings.to_json()))
        ready = self.directory / "ready.json"
        ready.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "devtools.http_server",
            "--serve",
            str(settings_file),
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
            "--ready-file",
            str(ready),
        ]
        if self.settings.tls:
            command += ["--tls-dir", str(self.directory / "tls")]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            described = self._wait_ready(ready)
        except BaseException:
            self.stop()
            raise
        self.port, self.admin_port = described["port"], described["admin_port"]
        return self

    def stop(self) -> None:
        """Stop the process; its connections drop (clients see them reset or closed)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """Stop the process at once (SIGKILL): open connections are reset mid-request."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and remove the directory if this server made it."""
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> HTTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    # -- observing and steering it (the admin API) ----------------------------------------------

    def stats(self) -> ServerStats:
        data = self._admin("GET", "/stats")
        data["statuses"] = {int(k): v for k, v in data["statuses"].items()}
        return ServerStats(**data)

    def requests(self, path: str | None = None, *, since: int = 0) -> list[RequestRecord]:
        """The requests received after number ``since``, in arrival order; with ``path``, only
        those whose path (and query) starts with it."""
        found = [RequestRecord(**r) for r in self._admin("GET", f"/requests?since={since}")]
        return [r for r in found if path is None or r.path.startswith(path)]

    def reset(self) -> ServerStats:
        """Back to the settings it started with; counters, records and rate limits cleared."""
        data = self._admin("POST", "/reset")
        data["statuses"] = {int(k): v for k, v in data["statuses"].items()}
        return ServerStats(**data)

    def configure(self, **changes: Any) -> ServerSettings:
        """Change :class:`ServerSettings` fields while it runs (not ``tls``, ``keep_alive_timeout``)."""
        return ServerSettings.from_json(self._admin("POST", "/configure", changes))

    def wait_until(
        self, condition: Callable[[ServerStats], bool], what: str, *, timeout: float = 10.0
    ) -> ServerStats:
        """Poll :meth:`stats` until ``condition`` holds (or fail naming ``what``)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if condition(stats):
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"the HTTP test server never saw {what} within {timeout:g}s: {stats}")
            time.sleep(POLL_INTERVAL)

    # -- internals ------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self.running:
            raise RuntimeError("the HTTP test server is not running")
        connection = http.client.HTTPConnection(self.host, self.admin_port, timeout=ADMIN_TIMEOUT)
        try:
            payload = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"admin {method} {path}: {response.status} {data[:500]!r}")
        return json.loads(data)

    def _wait_ready(self, ready: Path) -> dict[str, Any]:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the HTTP test server exited with status {self._process.returncode} while "
                    f"starting:\n{self.log_tail()}"
                )
            if ready.exists():
                described: dict[str, Any] = json.loads(ready.read_text())
                return described
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(
            f"the HTTP test server did not start within {READY_TIMEOUT:g}s:\n{self.log_tail()}"
        )


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.http_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--admin-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tls-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args(argv)
    if args.serve is not None:
        from ._http_serve import run

        assert args.ready_file is not None
        run(args.serve, args.port, args.admin_port, args.tls_dir, args.ready_file)
        return
    with HTTPTestServer(port=args.port, records=args.records, tls=args.tls) as server:
        print(f"serving {server.url} (admin API on port {server.admin_port}); Ctrl-C stops it", flush=True)
        if server.ca_path is not None:
            print(f"CA certificate: {server.ca_path}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(0.5)


if __name__ == "__main__":
    _main()
