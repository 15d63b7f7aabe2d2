"""Fixtures for the HTTP tests: the real HTTP test server, the delay/fault proxy, Airflow connections.

* ``http_server``: one plain-HTTP server for the session (1,000 records), reset to its start
  settings after each test that used it; ``tls_server`` the same over HTTPS with a throwaway CA.
  Tests that stop or reconfigure a server for good start their own (``make_server``).
* ``make_proxy``: a :class:`DelayProxy` in front of a server (round-trip time, cuts, stalls).
* ``make_connection``: an Airflow ``http`` connection to a server or proxy, exposed as an
  ``AIRFLOW_CONN_<ID>`` environment variable (JSON) for the test, as a deployment would define it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer

RECORDS = 1000

_conn_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def _session_server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer(records=RECORDS) as server:
        yield server


@pytest.fixture(scope="session")
def _session_tls_server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer(records=RECORDS, tls=True) as server:
        yield server


@pytest.fixture
def http_server(_session_server: HTTPTestServer) -> Iterator[HTTPTestServer]:
    _session_server.reset()
    yield _session_server
    _session_server.reset()


@pytest.fixture
def tls_server(_session_tls_server: HTTPTestServer) -> Iterator[HTTPTestServer]:
    _session_tls_server.reset()
    yield _session_tls_server
    _session_tls_server.reset()


@pytest.fixture
def make_server() -> Iterator[Callable[..., HTTPTestServer]]:
    servers: list[HTTPTestServer] = []

    def make(**settings: Any) -> HTTPTestServer:
        server = HTTPTestServer(**settings).start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., DelayProxy]]:
    proxies: list[DelayProxy] = []

    def make(server: HTTPTestServer, *, delay: float = 0.0) -> DelayProxy:
        proxy = DelayProxy(server.host, server.port, delay=delay).start()
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.close()


@pytest.fixture
def make_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``make_connection(server, via=None, login=None, password=None, **extra)`` -> a new connection id.

    The connection's host, port and schema point at the server (or at ``via``, a proxy in front
    of it); extras are given as they are (``verify`` defaults to the server's CA for a TLS server;
    pass ``verify=None`` to leave it out).
    """

    def make(
        server: HTTPTestServer,
        *,
        via: DelayProxy | None = None,
        login: str | None = None,
        password: str | None = None,
        **extra: Any,
    ) -> str:
        conn_id = f"http_test_{next(_conn_numbers)}"
        if server.ca_path is not None:
            extra.setdefault("verify", str(server.ca_path))
        extra = {k: v for k, v in extra.items() if v is not None}
        endpoint = via or server
        value: dict[str, Any] = {
            "conn_type": "http",
            "host": endpoint.host,
            "port": endpoint.port,
            "schema": server.scheme,
            "extra": extra,
        }
        if login is not None:
            value["login"] = login
        if password is not None:
            value["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return make
