"""Fixtures for the SFTP tests: a real OpenSSH server, a latency/fault proxy, Airflow connections.

* ``sshd``: one server for the session, serving a data set made once (:data:`DATA_FILES` small XML
  files in a few directories, a large file, a file only root may read, a directory only root may
  write). Tests that restart a server use ``own_sshd`` instead.
* ``proxy`` / ``make_proxy``: a :class:`DelayProxy` in front of a server.
* ``make_connection``: an Airflow ``sftp`` connection to a server or proxy, exposed as an
  ``AIRFLOW_CONN_<ID>`` environment variable (JSON) for the test, as a deployment would define it.

The tests need ``/usr/sbin/sshd`` (Debian: openssh-server); without it they fail, not skip.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.sshd import (
    MISSING_SSHD,
    SSHD,
    UNPRIVILEGED_USER,
    SSHServer,
    current_user,
    make_server_directory,
    remove_server_directory,
)

DATA_DIRECTORIES = 5
DATA_FILES = 500
LARGE_FILE_SIZE = 3 * 1024 * 1024 + 12345

_conn_numbers = itertools.count(1)

# asyncssh logs every channel at INFO; a failing test's captured log is more readable without it.
logging.getLogger("asyncssh").setLevel(logging.WARNING)


@dataclass(frozen=True)
class DataSet:
    root: Path
    #: remote path (absolute) -> content, for the small XML files
    files: dict[str, bytes]
    large: str
    large_content: bytes
    #: readable by root only (mode 000): the unprivileged user is refused
    unreadable: str
    #: a directory the unprivileged user may not write into
    read_only_dir: str
    #: a directory anyone may write into
    writable_dir: str


def _make_data(root: Path) -> DataSet:
    rng = random.Random(20240611)
    files: dict[str, bytes] = {}
    for d in range(DATA_DIRECTORIES):
        directory = root / "xml" / f"batch-{d}"
        directory.mkdir(parents=True)
        for i in range(DATA_FILES // DATA_DIRECTORIES):
            body = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(200, 4000)))
            content = f'<?xml version="1.0"?>\n<doc batch="{d}" n="{i}">{body}</doc>\n'.encode()
            path = directory / f"doc-{i:04d}.xml"
            path.write_bytes(content)
            files[str(path)] = content
    large = root / "large" / "big.bin"
    large.parent.mkdir()
    large_content = rng.randbytes(LARGE_FILE_SIZE)
    large.write_bytes(large_content)
    private = root / "private"
    private.mkdir()
    unreadable = private / "secret.xml"
    unreadable.write_bytes(b"<secret/>")
    unreadable.chmod(0o000)
    read_only = root / "read-only"
    read_only.mkdir(mode=0o755)
    writable = root / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    for path in (root / "xml", *(root / "xml").iterdir(), large.parent, private):
        path.chmod(0o755)
    return DataSet(root, files, str(large), large_content, str(unreadable), str(read_only), str(writable))


def _require_sshd() -> None:
    if not SSHD.is_file():
        pytest.fail(MISSING_SSHD, pytrace=False)


@pytest.fixture(scope="session")
def sshd() -> Iterator[SSHServer]:
    _require_sshd()
    directory = make_server_directory()
    server = SSHServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        remove_server_directory(directory)


@pytest.fixture(scope="session")
def data(sshd: SSHServer) -> DataSet:
    return _make_data(sshd.data_dir)


@pytest.fixture
def own_sshd() -> Iterator[SSHServer]:
    """A server of the test's own, to stop and restart."""
    _require_sshd()
    directory = make_server_directory()
    server = SSHServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        remove_server_directory(directory)


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., DelayProxy]]:
    proxies: list[DelayProxy] = []

    def make(server: SSHServer, *, delay: float = 0.0) -> DelayProxy:
        proxy = DelayProxy(server.host, server.port, delay=delay).start()
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.close()


@pytest.fixture
def proxy(sshd: SSHServer, make_proxy: Callable[..., DelayProxy]) -> DelayProxy:
    """A proxy without delay in front of the session's server; tests set ``up_delay``/``down_delay``."""
    return make_proxy(sshd)


@pytest.fixture
def make_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``make_connection(server, via=None, login=..., **extra)`` -> a new Airflow connection id.

    Extras default to what the server needs (the client key, the pinned host key); pass
    ``name=None`` to drop one. ``via`` routes the connection through a proxy.
    """

    def make(
        server: SSHServer, *, via: DelayProxy | None = None, login: str | None = None, **extra: Any
    ) -> str:
        conn_id = f"sftp_test_{next(_conn_numbers)}"
        extras: dict[str, Any] = {**server.connection_extra(), **extra}
        extras = {k: v for k, v in extras.items() if v is not None}
        endpoint = via or server
        value = {
            "conn_type": "sftp",
            "host": endpoint.host,
            "port": endpoint.port,
            "login": login or current_user(),
            "extra": extras,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return make


@pytest.fixture
def conn_id(sshd: SSHServer, make_connection: Callable[..., str]) -> str:
    """A connection straight to the session's server, as root."""
    return make_connection(sshd)


@pytest.fixture
def unprivileged_conn_id(sshd: SSHServer, make_connection: Callable[..., str]) -> str:
    """A connection as an unprivileged user, for whom file permissions are enforced."""
    return make_connection(sshd, login=UNPRIVILEGED_USER)


@pytest.fixture
def workdir(sshd: SSHServer, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory on the server for a test to write into (as root)."""
    path = sshd.data_dir / "work" / request.node.name.replace("[", "-").replace("]", "")
    path.mkdir(parents=True)
    os.chmod(path.parent, 0o755)
    yield path
