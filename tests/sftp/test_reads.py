"""Downloads come back whole, whether or not the server's short reads mean the end of the file.

A small file is read with one request. From OpenSSH (one read(2) per request, up to the maximum it
announces) an answer shorter than asked for is the whole file; another server may answer less
than asked anywhere in a file. The second case runs against asyncssh's own SFTP server, made to
answer at most 1,000 bytes per read: a real server over a real SSH connection, with the behaviour
the SFTP protocol allows and OpenSSH never shows.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from devtools.sshd import SSHServer

from airflow_iterate.sftp import SFTPPool, download_bytes, download_many
from airflow_iterate.sftp._connect import reads_whole_files
from airflow_iterate.sftp._remote import FIRST_READ, STREAM_THRESHOLD

from ._util import run

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
