"""Downloads come back whole, whether or not the server's short reads mean the end of the file.

A small file is read with one request. From OpenSSH (one read(2) per request, up to the maximum it
announces) an answer shorter than asked for is the whole file; another server may answer less
than asked anywhere in a file. The second case runs against asyncssh's own SFTP server, made to
answer at most 1,000 bytes per read: a real server over a real SSH connection, with the behaviour
the SFTP protocol allows and OpenSSH never shows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from devtools.sshd import SSHServer, current_user

from airflow_iterate.sftp import SFTPPool, download_bytes, download_many
from airflow_iterate.sftp._connect import reads_whole_files
from airflow_iterate.sftp._remote import FIRST_READ, STREAM_THRESHOLD

from ._util import run

CAPPED_READ = 1000
SIZES = (0, 1, 999, 1000, 1001, 40_000, FIRST_READ - 1, FIRST_READ, FIRST_READ + 1, 3 * FIRST_READ + 7)


@pytest.fixture(scope="module")
def sized_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, bytes]:
    rng = random.Random(7)
    return {size: rng.randbytes(size) for size in SIZES}


def write_files(directory: Path, files: dict[int, bytes]) -> dict[str, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    paths = {}
    for size, content in files.items():
        path = directory / f"file-{size}.bin"
        path.write_bytes(content)
        paths[str(path)] = content
    return paths


def download_all(conn_id: str, paths: dict[str, bytes]) -> tuple[dict[str, bytes], bool, dict[str, Any]]:
    """``download_bytes`` of each path, and ``download_many`` of them all into a local directory."""

    async def main() -> tuple[dict[str, bytes], bool, dict[str, Any]]:
        async with SFTPPool(conn_id) as pool:
            got = {path: await download_bytes(pool, path) for path in paths}
            async with pool.client() as sftp:
                whole = reads_whole_files(sftp)
            many = await download_many(pool, list(paths), to=local_dir)
            return got, whole, {r.remote_path: r for r in many}

    local_dir = Path(next(iter(paths))).parent.parent / "local"
    return run(main())


def test_openssh_short_reads_are_whole_files(
    sshd: SSHServer, make_connection: Any, sized_files: dict[int, bytes]
) -> None:
    paths = write_files(sshd.data_dir / "reads" / "remote", sized_files)
    got, whole, many = download_all(make_connection(sshd), paths)
    assert whole, "OpenSSH sessions should take the one-request path"
    assert {path: len(data) for path, data in got.items()} == {path: len(c) for path, c in paths.items()}
    assert got == paths
    assert {path: Path(many[path].local).read_bytes() for path in paths} == paths


class _CappedReads(asyncssh.SFTPServer):
    """Answers at most CAPPED_READ bytes per read request, as the SFTP protocol allows."""

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        return super().read(file_obj, offset, min(size, CAPPED_READ))  # type: ignore[no-any-return]


@pytest.fixture
def capped_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An asyncssh SFTP server on 127.0.0.1 (in a thread of its own) and a connection to it."""
    import asyncio
    import threading

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


def test_servers_answering_short_reads_still_give_whole_files(
    capped_server: tuple[str, Path], sized_files: dict[int, bytes]
) -> None:
    conn_id, root = capped_server
    paths = write_files(root / "remote", sized_files)
    got, whole, many = download_all(conn_id, paths)
    assert {path: len(data) for path, data in got.items()} == {path: len(c) for path, c in paths.items()}
    assert got == paths
    assert {path: Path(many[path].local).read_bytes() for path in paths} == paths
    assert not whole, "only OpenSSH's short reads mean the end of the file"
    assert max(SIZES) < STREAM_THRESHOLD  # every size above went through the in-memory path
