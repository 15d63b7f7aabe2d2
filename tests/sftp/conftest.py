"""Fixtures for the SFTP tests: a real OpenSSH server, a latency/fault proxy, Airflow connections.

* ``sshd``: one server for the session, serving a data set made once (:data:`DATA_FILES` small XML
  files in a few directories, a large file, a file only root may read, a directory only root may
  write). Tests that restart a server use ``own_sshd`` instead.
* ``proxy`` / ``make_proxy``: a :class:`DelayProxy` in front of a server.
* ``make_connection``: an Airflow ``sftp`` connection to a server or proxy, exposed as an
  ``AIRFLOW_CONN_<ID>`` environment variable (JSON) for the test, as a deployment would define it.
* ``capped_server``: another server, asyncssh's own, answering at most :data:`CAPPED_READ` bytes
  per read (as the SFTP protocol allows and OpenSSH never does), with a connection to it.

The tests need ``/usr/sbin/sshd`` (Debian: openssh-server); without it they fail, not skip.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
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


# -- another server: asyncssh's own, answering short reads ------------------------------------

#: the most the capped server answers to a read request
CAPPED_READ = 1000


class _CappedReads(asyncssh.SFTPServer):
    """Answers at most CAPPED_READ bytes per read request, as the SFTP protocol allows."""

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        return super().read(file_obj, offset, min(size, CAPPED_READ))  # type: ignore[no-any-return]


@pytest.fixture
def capped_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An asyncssh SFTP server on 127.0.0.1 (in a thread of its own), answering at most
    :data:`CAPPED_READ` bytes per read, and a connection to it; and the directory for its files."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        holder["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
            sftp_factory=_CappedReads,
            allow_scp=False,
        )

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="capped-sftp-server", daemon=True)
    thread.start()
    assert ready.wait(30), "the asyncssh server did not start"
    port = holder["server"].sockets[0].getsockname()[1]
    conn_id = "sftp_capped_reads"
    value = {
        "conn_type": "sftp",
        "host": "127.0.0.1",
        "port": port,
        "login": current_user(),
        "extra": {
            "private_key": client_key.export_private_key().decode(),
            "host_key": host_key.export_public_key().decode().strip(),
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    try:
        yield conn_id, tmp_path
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
