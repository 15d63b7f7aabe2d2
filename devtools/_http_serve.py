"""The HTTP test server's process: uvicorn serving the API and, on a second port, the admin API.

Started by ``devtools.http_server.HTTPTestServer`` as ``python -m devtools.http_server``. The API
is served by uvicorn's default HTTP/1.1 protocol (httptools where installed, as Airflow's own
api-server), subclassed only to count connections: every connection the server accepts is
numbered, and each request's record names the connection it came on. The admin API listens on a
port of its own so that observing the server never adds to what it counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ._http_app import AdminApp, ApiApp, ServerSettings, ServerState

__all__ = ["run"]

LOOPBACK = "127.0.0.1"


def _counting(base: type[asyncio.Protocol], state: ServerState) -> type[asyncio.Protocol]:
    class CountingProtocol(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: Any) -> None:
            self._counted_peer = transport.get_extra_info("peername")
            state.connection_made(self._counted_peer)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            state.connection_lost(getattr(self, "_counted_peer", None))
            super().connection_lost(exc)

    return CountingProtocol


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`run` (two servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.set_inheritable(True)
    return sock


async def _serve(
    settings: ServerSettings, port: int, admin_port: int, tls_dir: Path | None, ready: Path
) -> None:
    state = ServerState(settings)
    api_socket, admin_socket = _bind(port), _bind(admin_port)
    ssl: dict[str, Any] = {}
    if settings.tls:
        assert tls_dir is not None
        ssl = {"ssl_certfile": str(tls_dir / "server.pem"), "ssl_keyfile": str(tls_dir / "server-key.pem")}
    common: dict[str, Any] = {"lifespan": "off", "access_log": False, "log_level": "warning", "ws": "none"}
    api = _Server(
        uvicorn.Config(
            ApiApp(state),
            http=_counting(AutoHTTPProtocol, state),
            timeout_keep_alive=int(settings.keep_alive_timeout) or 1,
            backlog=4096,
            **ssl,
            **common,
        )
    )
    admin = _Server(uvicorn.Config(AdminApp(state), http="h11", **common))
    servers = [api, admin]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    tasks = [
        asyncio.ensure_future(api.serve(sockets=[api_socket])),
        asyncio.ensure_future(admin.serve(sockets=[admin_socket])),
    ]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            stop()
            await asyncio.gather(*tasks)
            raise SystemExit("the HTTP test server did not start")
        await asyncio.sleep(0.01)
    description = {
        "port": api_socket.getsockname()[1],
        "admin_port": admin_socket.getsockname()[1],
        "pid": os.getpid(),
    }
    partial = ready.with_name(ready.name + ".partial")
    partial.write_text(json.dumps(description))
    partial.replace(ready)
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(*tasks, return_exceptions=True)


def run(settings_file: Path, port: int, admin_port: int, tls_dir: Path | None, ready: Path) -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = ServerSettings.from_json(json.loads(settings_file.read_text()))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(settings, port, admin_port, tls_dir, ready))
    else:
        uvloop.run(_serve(settings, port, admin_port, tls_dir, ready))
