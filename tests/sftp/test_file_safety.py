"""Files that work against a transfer, on a real sshd: links on either side, devices, files that
change while they are read, local names that collide, permissions, opens cut short.

What the helpers promise: a download is a regular file with the bytes of one version of the remote
file (a link followed by the server), written nowhere but under its directory; an upload is a
regular file with the bytes of the local file (a link followed), with the permissions of the file
it replaces; anything else is an :class:`SFTPTransferError` naming the file, and a file's trouble
never costs the other borrowers their connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import psutil
import pytest
from airflow.sdk import ObjectStoragePath
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

from airflow_iterate.sftp import (
    SFTPConnectionLostError,
    SFTPPool,
    SFTPTransferError,
    download_bytes,
    download_file,
    download_many,
    upload_file,
    upload_many,
)

from ._util import eventually, run, with_pool

T = TypeVar("T")
MiB = 1024 * 1024


def links_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_symlink()]


# -- what the server's processes hold open (the sftp server is a child of the test's sshd) ------


def _server_processes(server: SSHServer) -> list[psutil.Process]:
    processes = []
    for pid in server.session_pids():
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            processes += [process, *process.children(recursive=True)]
    return processes


def server_handles(server: SSHServer, path: Path) -> list[int]:
    """The offsets of the server's open file descriptors on ``path`` (one per open handle)."""
    offsets = []
    for process in _server_processes(server):
        fd_dir = Path(f"/proc/{process.pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == str(path):
                        info = Path(f"/proc/{process.pid}/fdinfo/{fd.name}").read_text()
                        offsets.append(int(info.split()[1]))  # "pos:\t<offset>"
    return offsets


# -- remote links and special files (downloads) -----------------------------------------------


def test_a_remote_link_downloads_as_a_regular_file_with_the_bytes_it_names(
    conn_id: str, workdir: Path, tmp_path: Path
) -> None:
    """Never a local link (scp's CVE-2019-6111 class), whatever the link names, large or small."""
    big = os.urandom(2 * MiB + 5)
    (workdir / "big.bin").write_bytes(big)
    (workdir / "victim.txt").write_bytes(b"a file beside the download directory")
    (workdir / "in").mkdir()
    os.symlink("big.bin", workdir / "latest.bin")  # an ordinary "latest" link
    os.symlink("../victim.txt", workdir / "in" / "evil")  # relative, out of its directory
    os.symlink(str(workdir / "big.bin"), workdir / "in" / "absolute.bin")
    out = tmp_path / "out"

    async def work(pool: SFTPPool) -> list[Any]:
        single = [
            await download_file(pool, str(workdir / "latest.bin"), out / "single"),
            await download_file(pool, str(workdir / "in" / "evil"), out / "single"),
            await download_file(pool, str(workdir / "in" / "absolute.bin"), out / "single"),
        ]
        paths = [
            str(workdir / "latest.bin"),
            str(workdir / "in" / "evil"),
            str(workdir / "in" / "absolute.bin"),
        ]
        many = await download_many(pool, paths, to=out / "tree", remote_root=str(workdir))
        assert pool.statistics().discarded == 0
        return [*single, *many]

    single_latest, single_evil, single_absolute, *many = with_pool(conn_id, work)
    assert all(r.ok for r in many), [r.error for r in many]
    expected = {
        single_latest: big,
        single_evil: b"a file beside the download directory",
        single_absolute: big,
        out / "tree" / "latest.bin": big,
        out / "tree" / "in" / "evil": b"a file beside the download directory",
        out / "tree" / "in" / "absolute.bin": big,
    }
    for local, content in expected.items():
        assert not local.is_symlink() and stat.S_ISREG(local.lstat().st_mode), local
        assert local.read_bytes() == content, local
    assert links_under(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing beside the target


def test_a_link_download_does_not_cost_a_concurrent_download_its_connection(
    conn_id: str, workdir: Path, tmp_path: Path
) -> None:
    huge = os.urandom(32 * MiB)
    (workdir / "huge.bin").write_bytes(huge)
    (workdir / "big.bin").write_bytes(os.urandom(2 * MiB))
    os.symlink("big.bin", workdir / "latest.bin")

    async def work(pool: SFTPPool) -> None:
        transfer = asyncio.ensure_future(download_file(pool, str(workdir / "huge.bin"), tmp_path / "huge"))
        try:
            await eventually(
                lambda: (
                    transfer.done()
                    or any(p.stat().st_size > 0 for p in (tmp_path / "huge").glob(".*.partial"))
                ),
                "the large download is under way",
            )
            assert not transfer.done(), "the large download finished before the link's: nothing was tested"
            latest = await download_file(pool, str(workdir / "latest.bin"), tmp_path / "latest")
            assert latest.read_bytes() == (workdir / "big.bin").read_bytes() and not latest.is_symlink()
            assert (await transfer).read_bytes() == huge
        finally:
            transfer.cancel()
            await asyncio.gather(transfer, return_exceptions=True)
        stats = pool.statistics()
        assert (stats.opened, stats.discarded) == (1, 0), stats

    with_pool(conn_id, work, max_connections=1)


def test_special_remote_files_are_transfer_errors_naming_the_file(
    conn_id: str, workdir: Path, tmp_path: Path
) -> None:
    zero = workdir / "zero"
    os.symlink("/dev/zero", zero)

    async def work(pool: SFTPPool) -> list[Any]:
        outcomes: list[Any] = []
        for call in (
            lambda: download_bytes(pool, str(zero)),
            lambda: download_file(pool, str(zero), tmp_path / "out"),
        ):
            try:
                await call()
            except Exception as exc:
                outcomes.append(exc)
        (result,) = await download_many(pool, [str(zero)], to=tmp_path / "many")
        outcomes.append(result.error)
        assert pool.statistics().discarded == 0
        return outcomes

    for error in with_pool(conn_id, work):
        assert isinstance(error, SFTPTransferError), repr(error)
        assert not isinstance(error, SFTPConnectionLostError)
        assert f"download of {str(zero)!r}" in str(error) and "not a regular file" in str(error)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# -- one version of a file, or an error -------------------------------------------------------


@pytest.mark.parametrize("into", ["memory", "file"])
def test_a_file_replaced_during_a_download_comes_from_one_version(
    sshd: SSHServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    workdir: Path,
    tmp_path: Path,
    into: str,
) -> None:
    """The feed is renamed over while it is read (as an atomic upload does): the download has the
    old version's bytes, not the old start and the new rest."""
    proxy = make_proxy(sshd, delay=0.05)
    conn_id = make_connection(sshd, via=proxy)
    feed = workdir / "feed.bin"
    old, new = os.urandom(3 * MiB), os.urandom(3 * MiB)
    feed.write_bytes(old)
    (workdir / "feed.next").write_bytes(new)
    (workdir / "hello.xml").write_bytes(b"<hello/>")

    async def work(pool: SFTPPool) -> bytes:
        assert await download_bytes(pool, str(workdir / "hello.xml")) == b"<hello/>"  # connected
        if into == "memory":
            download: Awaitable[Any] = download_bytes(pool, str(feed))
        else:
            download = download_file(pool, str(feed), tmp_path)
        task = asyncio.ensure_future(download)
        await eventually(lambda: bool(server_handles(sshd, feed)) or task.done(), "the server opened it")
        assert not task.done()
        os.replace(workdir / "feed.next", feed)
        result = await task
        return result if isinstance(result, bytes) else Path(result).read_bytes()

    content = with_pool(conn_id, work)
    assert content == old, "the download mixed two versions of the file"


@pytest.mark.parametrize("change", ["shrinks", "grows"])
def test_a_file_that_changes_size_while_it_is_read_is_an_error_naming_it(
    sshd: SSHServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    workdir: Path,
    tmp_path: Path,
    change: str,
) -> None:
    proxy = make_proxy(sshd, delay=0.02)
    conn_id = make_connection(sshd, via=proxy)
    log = workdir / "app.log"
    log.write_bytes(os.urandom(64 * MiB))

    async def work(pool: SFTPPool) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for download in (
            lambda: download_bytes(pool, str(log)),
            lambda: download_file(pool, str(log), tmp_path),
        ):
            await eventually(lambda: server_handles(sshd, log) == [], "the last download's handle closes")
            with log.open("r+b") as f:
                f.truncate(64 * MiB)
            task = asyncio.ensure_future(download())
            # well past the first block and the size the download goes by
            await eventually(
                lambda task=task: (
                    task.done() or any(offset > 8 * MiB for offset in server_handles(sshd, log))
                ),
                "the download is halfway",
            )
            assert not task.done(), "the download finished before the file changed: nothing was tested"
            if change == "shrinks":
                os.truncate(log, 1 * MiB)
            else:
                with log.open("ab") as f:
                    f.write(os.urandom(MiB))
            try:
                await task
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        assert pool.statistics().discarded == 0
        return errors

    for error in with_pool(conn_id, work):
        assert isinstance(error, SFTPTransferError), repr(error)
        assert not isinstance(error, SFTPConnectionLostError)
        assert f"download of {str(log)!r}" in str(error) and "changed while it was read" in str(error)
    assert list(tmp_path.iterdir()) == []  # no partial file


# -- cancelled opens ----------------------------------------------------------------------------


def test_downloads_cancelled_while_opening_leave_no_handle_open_on_the_server(
    own_sshd: SSHServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    """asyncssh drops the answer to a cancelled open: the server's handle must be closed anyway."""
    wanted = own_sshd.data_dir / "wanted.xml"
    wanted.write_bytes(b"<wanted/>")
    proxy = make_proxy(own_sshd)
    conn_id = make_connection(own_sshd, via=proxy)
    count = 200

    async def main() -> None:
        async with SFTPPool(conn_id, max_connections=1, borrowers_per_session=count + 1) as pool:
            assert await download_bytes(pool, str(wanted)) == b"<wanted/>"
            await eventually(lambda: server_handles(own_sshd, wanted) == [], "the first download's close")
            proxy.stall()  # every open from now on waits for its answer
            try:
                downloads = [asyncio.ensure_future(download_bytes(pool, str(wanted))) for _ in range(count)]
                await eventually(lambda: pool.statistics().in_use == count, "every open is sent")
                for _ in range(3):
                    await asyncio.sleep(0)
                for download in downloads:
                    download.cancel()
                outcomes = await asyncio.gather(*downloads, return_exceptions=True)
                assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
            finally:
                proxy.resume()
            # One more download on the same session: the server has handled every open before it.
            assert await download_bytes(pool, str(wanted)) == b"<wanted/>"
            await eventually(lambda: server_handles(own_sshd, wanted) == [], "the server's handles close")
            assert pool.statistics().discarded == 0

    run(main())


# -- local links and name collisions (downloads) ------------------------------------------------


def test_a_download_never_writes_through_a_local_link(conn_id: str, workdir: Path, tmp_path: Path) -> None:
    (workdir / "report.xml").write_bytes(b"<from-the-server/>")
    (workdir / "sub").mkdir()
    (workdir / "sub" / "x.xml").write_bytes(b"<x/>")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "report.xml").write_bytes(b"mine")
    local = tmp_path / "local"
    local.mkdir()
    os.symlink("../outside/report.xml", local / "report.xml")  # left by an earlier tool
    os.symlink("../outside", local / "sub")

    async def work(pool: SFTPPool) -> list[BaseException]:
        errors = []
        for remote in ("sub/x.xml", "report.xml"):
            with pytest.raises(SFTPTransferError) as info:
                await download_file(pool, str(workdir / remote), local, remote_root=str(workdir))
            errors.append(info.value)
        return errors

    for error in with_pool(conn_id, work):
        assert not isinstance(error, SFTPConnectionLostError)
        assert "is a symbolic link" in str(error) and "never writes through" in str(error)
    assert (outside / "report.xml").read_bytes() == b"mine"
    assert sorted(p.name for p in outside.iterdir()) == ["report.xml"]
    assert sorted(p.name for p in local.iterdir()) == ["report.xml", "sub"]  # the links, as they were
    assert (local / "report.xml").is_symlink() and (local / "sub").is_symlink()


def test_download_many_refuses_files_that_would_share_a_local_name(
    conn_id: str, workdir: Path, tmp_path: Path
) -> None:
    for directory, content in (("a", b"a's"), ("b", b"b's"), ("c", b"c's")):
        (workdir / directory).mkdir()
        (workdir / directory / ("y.csv" if directory == "c" else "x.csv")).write_bytes(content)
    paths = [str(workdir / "a" / "x.csv"), str(workdir / "b" / "x.csv"), str(workdir / "c" / "y.csv")]

    async def work(pool: SFTPPool) -> tuple[list[Any], list[Any], list[Any]]:
        flat = await download_many(pool, paths, to=tmp_path / "flat")
        stored = await download_many(pool, paths, to=ObjectStoragePath(f"file://{tmp_path}/stored/"))
        kept = await download_many(pool, paths, to=tmp_path / "tree", remote_root=str(workdir))
        return flat, stored, kept

    flat, stored, kept = with_pool(conn_id, work)
    for results in (flat, stored):
        assert [r.ok for r in results] == [False, False, True]
        for result, other in ((results[0], paths[1]), (results[1], paths[0])):
            assert isinstance(result.error, SFTPTransferError)
            assert other in str(result.error) and "'x.csv'" in str(result.error)
            assert "remote_root" in str(result.error)
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["y.csv"]
    assert sorted(p.name for p in (tmp_path / "stored").iterdir()) == ["y.csv"]
    assert all(r.ok for r in kept)
    assert (tmp_path / "tree" / "a" / "x.csv").read_bytes() == b"a's"
    assert (tmp_path / "tree" / "b" / "x.csv").read_bytes() == b"b's"


# -- uploads: local links, permissions, servers without posix-rename ----------------------------


@pytest.mark.parametrize("atomic", [True, False])
def test_uploading_a_local_link_uploads_the_bytes_it_names(
    conn_id: str, workdir: Path, tmp_path: Path, atomic: bool
) -> None:
    (tmp_path / "data").mkdir()
    big, small = os.urandom(3 * MiB + 1), b"<small/>"
    (tmp_path / "data" / "big.bin").write_bytes(big)
    (tmp_path / "data" / "small.xml").write_bytes(small)
    os.symlink("data/big.bin", tmp_path / "big-link")
    os.symlink("data/small.xml", tmp_path / "small-link")
    os.symlink("data/nowhere", tmp_path / "dangling")

    async def work(pool: SFTPPool) -> list[Any]:
        return await upload_many(
            pool,
            [
                (tmp_path / "big-link", f"{workdir}/big.bin"),
                (tmp_path / "small-link", f"{workdir}/small.xml"),
                (tmp_path / "dangling", f"{workdir}/never.xml"),
            ],
            atomic=atomic,
        )

    results = with_pool(conn_id, work)
    assert [r.ok for r in results] == [True, True, False]
    assert [r.size for r in results[:2]] == [len(big), len(small)]
    for name, content in (("big.bin", big), ("small.xml", small)):
        assert not (workdir / name).is_symlink(), f"{name} arrived as a link"
        assert (workdir / name).read_bytes() == content
    assert isinstance(results[2].error, FileNotFoundError)  # the local error, as for a missing file
    assert not os.path.lexists(workdir / "never.xml")
    assert sorted(p.name for p in workdir.iterdir()) == ["big.bin", "small.xml"]


def test_an_upload_keeps_the_permissions_of_the_file_it_replaces(
    conn_id: str, workdir: Path, tmp_path: Path
) -> None:
    secret, shared = workdir / "secret.env", workdir / "shared.txt"
    for path, mode in ((secret, 0o600), (shared, 0o664)):
        path.write_bytes(b"old")
        path.chmod(mode)  # (0o664 is wider than the server's umask lets a new file be)
    local = tmp_path / "script.sh"
    local.write_bytes(b"#!/bin/sh\n" + os.urandom(2 * MiB))
    local.chmod(0o750)

    async def work(pool: SFTPPool) -> None:
        await upload_file(pool, b"TOKEN=new", str(secret))
        await upload_file(pool, local, str(shared))  # the local file's mode does not matter here
        for atomic in (True, False):  # new files: as the local file, or the server's default
            await upload_file(pool, local, f"{workdir}/new-{atomic}.sh", atomic=atomic)
            await upload_file(pool, b"x", f"{workdir}/new-{atomic}.txt", atomic=atomic)

    with_pool(conn_id, work)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert secret.read_bytes() == b"TOKEN=new" and mode(secret) == 0o600
    assert shared.read_bytes() == local.read_bytes() and mode(shared) == 0o664
    assert mode(workdir / "new-True.sh") == mode(workdir / "new-False.sh") == 0o750
    assert mode(workdir / "new-True.txt") == mode(workdir / "new-False.txt")
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("outcome", ["renamed", "rename-fails"])
def test_without_posix_rename_an_atomic_upload_never_loses_the_old_file(
    conn_id: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    """A server without OpenSSH's posix-rename: the old file is renamed aside, never removed first.

    The missing extension is a monkeypatched client method (OpenSSH always offers it); the failed
    rename is real: the temporary file is gone from the server when the rename is asked for.
    """
    target = workdir / "feed.xml"
    target.write_bytes(b"<old/>")
    target.chmod(0o640)

    async def no_posix_rename(self: asyncssh.SFTPClient, oldpath: Any, newpath: Any) -> None:
        if outcome == "rename-fails":
            Path(os.fsdecode(oldpath)).unlink()  # e.g. a clean-up job removing hidden files
        raise asyncssh.SFTPOpUnsupported("posix-rename not supported")

    monkeypatch.setattr(asyncssh.SFTPClient, "posix_rename", no_posix_rename)

    async def work(pool: SFTPPool) -> BaseException | None:
        try:
            await upload_file(pool, b"<new/>", str(target))
        except SFTPTransferError as exc:
            return exc
        return None

    error = with_pool(conn_id, work)
    if outcome == "renamed":
        assert error is None
        assert target.read_bytes() == b"<new/>" and stat.S_IMODE(target.stat().st_mode) == 0o640
    else:
        assert isinstance(error, SFTPTransferError) and f"upload of {str(target)!r}" in str(error)
        assert target.read_bytes() == b"<old/>", "the old file is gone"
    assert sorted(p.name for p in workdir.iterdir()) == ["feed.xml"]
