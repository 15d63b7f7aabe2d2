"""The request layer under the transfer helpers, against OpenSSH and against asyncssh's own server.

What it must keep: every byte of every file, in order, whatever the server answers (OpenSSH's whole
reads, asyncssh's server capped at 1,000 bytes per read); uploads atomic and whole; a cancelled
open closes the handle the server opened; the requests of one pass of the event loop leave in one
write, and each request still goes out.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.constants import FXP_OPEN
from devtools.sshd import SSHServer

from airflow_iterate.sftp import SFTPPool, download_bytes, download_file, upload_file, upload_many
from airflow_iterate.sftp._remote import FIRST_READ, STREAM_THRESHOLD
from airflow_iterate.sftp._requests import BATCH_LIMIT, SFTP_VERSION, BatchingWriter, Requests

from ._util import eventually, run
from .test_file_safety import server_handles

MiB = 1024 * 1024
UPLOAD_SIZES = (0, 1, 1000, 1001, BATCH_LIMIT - 1, BATCH_LIMIT, 40_000, FIRST_READ + 1, STREAM_THRESHOLD + 3)


def session_of(pool: SFTPPool) -> Requests:
    """The request layer of the pool's first session."""
    sessions = [s for conn in pool._connections for s in conn.sessions]
    return sessions[0].requests


@pytest.fixture(params=["openssh", "asyncssh"])
def server(
    request: pytest.FixtureRequest,
    sshd: SSHServer,
    make_connection: Callable[..., str],
    workdir: Path,
) -> tuple[str, Path]:
    """A connection and a directory to write into: on OpenSSH, or on asyncssh's server (short reads)."""
    if request.param == "openssh":
        return make_connection(sshd), workdir
    conn_id, root = request.getfixturevalue("capped_server")
    directory = root / "files"
    directory.mkdir()
    return conn_id, directory


def test_sessions_speak_version_3_through_a_batching_writer(server: tuple[str, Path]) -> None:
    conn_id, _ = server

    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            async with pool.client() as sftp:
                await sftp.realpath(".")
            session = session_of(pool)
            handler: Any = session.sftp._handler
            assert handler.version == SFTP_VERSION
            assert isinstance(handler._writer, BatchingWriter)

    run(main())


def test_uploads_and_downloads_come_back_whole(server: tuple[str, Path], tmp_path: Path) -> None:
    """Every size around the request and batching limits, as bytes and from local files, atomic or
    in place, read back into memory and into files."""
    conn_id, directory = server
    rng = random.Random(11)
    contents = {size: rng.randbytes(size) for size in UPLOAD_SIZES}
    local = tmp_path / "local"
    local.mkdir()
    for size, content in contents.items():
        (local / f"{size}.bin").write_bytes(content)

    async def main() -> dict[str, bytes]:
        got: dict[str, bytes] = {}
        async with SFTPPool(conn_id) as pool:
            for size, content in contents.items():
                await upload_file(pool, content, str(directory / f"bytes-{size}.bin"))
                in_place = str(directory / f"file-{size}.bin")
                await upload_file(pool, local / f"{size}.bin", in_place, atomic=False)
            many = await upload_many(
                pool, [(local / f"{size}.bin", str(directory / f"many-{size}.bin")) for size in contents]
            )
            assert all(r.ok for r in many), [r.error for r in many]
            for name in sorted(p.name for p in directory.iterdir()):
                got[name] = await download_bytes(pool, str(directory / name))
                path = await download_file(pool, str(directory / name), tmp_path / "back")
                assert path.read_bytes() == got[name]
        return got

    got = run(main())
    kinds = ("bytes", "file", "many")
    expected = {f"{kind}-{size}.bin": content for size, content in contents.items() for kind in kinds}
    assert {name: len(data) for name, data in got.items()} == {name: len(c) for name, c in expected.items()}
    assert got == expected


def test_the_requests_of_one_pass_leave_in_one_write(conn_id: str, data: Any) -> None:
    """32 downloads started together: their 32 opens reach the channel as one write."""
    paths = sorted(data.files)[:32]

    async def main() -> None:
        async with SFTPPool(conn_id, max_connections=1, borrowers_per_session=64) as pool:
            assert await download_bytes(pool, paths[0]) == data.files[paths[0]]  # connected
            writer = session_of(pool)._handler._writer
            writer.flush()  # the first download's close
            inner = writer._inner
            written: list[bytes] = []
            original = inner.write

            def recording(chunk: bytes) -> None:
                written.append(bytes(chunk))
                original(chunk)

            inner.write = recording
            try:
                got = await asyncio.gather(*(download_bytes(pool, p) for p in paths))
            finally:
                del inner.write
            assert got == [data.files[p] for p in paths]
            opens = [_request_types(chunk).count(FXP_OPEN) for chunk in written]
            assert [n for n in opens if n] == [len(paths)], opens
            # 32 opens, 32 reads and 32 closes, in far fewer writes than requests
            assert sum(len(_request_types(chunk)) for chunk in written) == 3 * len(paths)
            assert len(written) < len(paths)

    run(main())


def _request_types(chunk: bytes) -> list[int]:
    """The types of the SFTP requests in what one write sent."""
    types = []
    offset = 0
    while offset < len(chunk):
        (length,) = struct.unpack_from(">L", chunk, offset)
        types.append(chunk[offset + 4])
        offset += 4 + length
    assert offset == len(chunk)
    return types


def test_an_open_answered_just_before_its_cancellation_closes_the_handle(
    own_sshd: SSHServer, make_connection: Callable[..., str]
) -> None:
    """The server's answer has arrived and the caller is cancelled before reading it: the handle in
    that answer is closed all the same. (A cancellation before the answer: test_file_safety.)"""
    wanted = own_sshd.data_dir / "wanted.xml"
    wanted.write_bytes(b"<wanted/>")
    conn_id = make_connection(own_sshd)

    async def main() -> None:
        async with SFTPPool(conn_id, max_connections=1) as pool:
            assert await download_bytes(pool, str(wanted)) == b"<wanted/>"
            await eventually(lambda: server_handles(own_sshd, wanted) == [], "the first download's close")
            session = session_of(pool)
            handler: Any = session._handler
            opening: list[asyncio.Task[bytes]] = []

            class CancelOnAnswer(dict):  # type: ignore[type-arg]
                """Arms the open's answer to cancel the open's task, before that task resumes."""

                def __setitem__(self, pktid: int, waiter: Any) -> None:
                    if isinstance(waiter, asyncio.Future) and opening:
                        waiter.add_done_callback(lambda _: opening.pop().cancel())
                    super().__setitem__(pktid, waiter)

            handler._requests = CancelOnAnswer(handler._requests)
            try:
                task = asyncio.ensure_future(session.open(str(wanted).encode(), asyncssh.FXF_READ))
                opening.append(task)
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert not opening, "the open's answer did not arrive"
            finally:
                handler._requests = dict(handler._requests)
            await eventually(lambda: server_handles(own_sshd, wanted) == [], "the adopted handle's close")
            assert await download_bytes(pool, str(wanted)) == b"<wanted/>"
            assert pool.statistics().discarded == 0

    run(main())


def test_requests_queued_when_the_connection_dies_fail_instead_of_hanging(conn_id: str, data: Any) -> None:
    path = sorted(data.files)[0]

    async def main() -> None:
        async with SFTPPool(conn_id, max_connections=1) as pool:
            assert await download_bytes(pool, path) == data.files[path]
            session = session_of(pool)
            opening = asyncio.ensure_future(session.open(path.encode(), asyncssh.FXF_READ))
            await asyncio.sleep(0)  # the open is queued, not yet written
            assert session._handler._writer._queued
            ssh = pool._connections[0].ssh
            assert ssh is not None
            ssh.abort()
            with pytest.raises((asyncssh.Error, OSError)):
                await asyncio.wait_for(opening, 10)
            # and the pool carries on with a new connection
            assert await download_bytes(pool, path) == data.files[path]

    run(main())


def test_a_large_upload_is_written_in_pieces_the_server_accepts(conn_id: str, workdir: Path) -> None:
    content = os.urandom(3 * MiB + 17)

    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            assert await upload_file(pool, content, str(workdir / "big.bin")) == len(content)
            assert session_of(pool).max_write <= 256 * 1024

    run(main())
    assert (workdir / "big.bin").read_bytes() == content
