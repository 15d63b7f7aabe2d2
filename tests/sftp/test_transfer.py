"""The transfer helpers against a real sshd: listing, downloads, uploads, per-file errors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from airflow.sdk import ObjectStoragePath
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

from airflow_iterate.sftp import (
    SFTPFileNotFoundError,
    SFTPPermissionError,
    SFTPPool,
    SFTPTransferError,
    TransferResult,
    download_bytes,
    download_file,
    download_many,
    download_to_storage,
    list_files,
    upload_file,
    upload_many,
)

from ._util import eventually, run, with_pool
from .conftest import DATA_FILES, DataSet

T = TypeVar("T")


def no_partial_files(directory: Path) -> bool:
    return not [p for p in directory.rglob("*") if p.name.endswith(".partial")]


# -- listing ----------------------------------------------------------------------------------------


def test_list_files_walks_the_tree_with_sizes(conn_id: str, data: DataSet) -> None:
    files = with_pool(conn_id, lambda pool: list_files(pool, str(data.root / "xml")))
    assert {f.path: f.size for f in files} == {path: len(content) for path, content in data.files.items()}
    assert [f.path for f in files] == sorted(data.files)
    assert all(f.mtime for f in files)


def test_list_files_of_one_directory(conn_id: str, data: DataSet, sshd: SSHServer) -> None:
    os.symlink(data.large, data.root / "xml" / "link-to-big.bin")
    os.symlink(data.root / "xml" / "batch-0", data.root / "xml" / "link-to-dir")
    os.symlink(data.root / "nowhere", data.root / "xml" / "dangling")
    try:
        top = with_pool(conn_id, lambda pool: list_files(pool, str(data.root / "xml"), recursive=False))
        # files only (directories are walked, not listed); a link to a file counts as that file
        assert [(f.path, f.size) for f in top] == [
            (str(data.root / "xml" / "link-to-big.bin"), len(data.large_content))
        ]
        relative = with_pool(conn_id, lambda pool: list_files(pool, "large"))  # the server's start dir
        assert [(f.path, f.size) for f in relative] == [("large/big.bin", len(data.large_content))]
    finally:
        (data.root / "xml" / "link-to-big.bin").unlink()
        (data.root / "xml" / "link-to-dir").unlink()
        (data.root / "xml" / "dangling").unlink()


def test_list_files_of_a_missing_directory_names_it(conn_id: str) -> None:
    with pytest.raises(
        SFTPFileNotFoundError, match=rf"listing of '/no/such/dir' over SFTP connection '{conn_id}'"
    ):
        with_pool(conn_id, lambda pool: list_files(pool, "/no/such/dir"))


# -- downloads ------------------------------------------------------------------------------------


def test_download_bytes_small_and_large(conn_id: str, data: DataSet) -> None:
    path, content = next(iter(data.files.items()))

    async def work(pool: SFTPPool) -> None:
        assert await download_bytes(pool, path) == content
        assert await download_bytes(pool, data.large) == data.large_content

    with_pool(conn_id, work)


def test_download_file_into_a_directory(conn_id: str, data: DataSet, tmp_path: Path) -> None:
    path, content = next(iter(data.files.items()))

    async def work(pool: SFTPPool) -> None:
        flat = await download_file(pool, path, tmp_path / "flat")
        assert flat == tmp_path / "flat" / Path(path).name and flat.read_bytes() == content
        nested = await download_file(pool, path, tmp_path / "tree", remote_root=str(data.root))
        assert nested == tmp_path / "tree" / Path(path).relative_to(data.root)
        assert nested.read_bytes() == content
        big = await download_file(pool, data.large, tmp_path / "big")  # streamed by asyncssh
        assert big.read_bytes() == data.large_content

    with_pool(conn_id, work)
    assert no_partial_files(tmp_path)


def test_download_of_a_missing_file_names_it_and_leaves_nothing(
    conn_id: str, data: DataSet, tmp_path: Path
) -> None:
    missing = str(data.root / "xml" / "missing.xml")
    with pytest.raises(SFTPFileNotFoundError) as info:
        with_pool(conn_id, lambda pool: download_file(pool, missing, tmp_path))
    assert str(info.value) == (
        f"download of {missing!r} over SFTP connection {conn_id!r} failed: no such file or directory"
    )
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.path == missing and info.value.operation == "download"
    assert list(tmp_path.iterdir()) == []


def test_download_many_reports_each_file(conn_id: str, data: DataSet, tmp_path: Path) -> None:
    paths = list(data.files)[:50]
    missing = str(data.root / "xml" / "missing.xml")
    requested = [*paths[:25], missing, *paths[25:]]
    seen: list[TransferResult] = []

    async def work(pool: SFTPPool) -> tuple[list[TransferResult], list[TransferResult], list[TransferResult]]:
        in_memory = await download_many(pool, requested, concurrency=16, progress=seen.append)
        local = await download_many(pool, requested, to=tmp_path / "local", remote_root=str(data.root))
        storage = ObjectStoragePath(f"file://{tmp_path}/storage/")
        stored = await download_many(pool, requested, to=storage, remote_root=str(data.root))
        return in_memory, local, stored

    in_memory, local, stored = with_pool(conn_id, work)
    for results in (in_memory, local, stored):
        assert [r.remote_path for r in results] == requested  # input order
        assert [r.ok for r in results] == [p != missing for p in requested]
        failure = results[25]
        assert isinstance(failure.error, SFTPFileNotFoundError) and missing in str(failure.error)
    assert len(seen) == len(requested)
    for result in in_memory:
        if result.ok:
            assert result.data == data.files[result.remote_path] and result.size == len(result.data)
    for result in local:
        if result.ok:
            assert result.local is not None
            assert Path(result.local).read_bytes() == data.files[result.remote_path]
    for result in stored:
        if result.ok:
            relative = Path(result.remote_path).relative_to(data.root)
            assert result.local == str(ObjectStoragePath(f"file://{tmp_path}/storage/") / relative)
            assert (tmp_path / "storage" / relative).read_bytes() == data.files[result.remote_path]
    assert no_partial_files(tmp_path)


def test_download_to_storage_single(conn_id: str, data: DataSet, tmp_path: Path) -> None:
    path, content = next(iter(data.files.items()))
    written = with_pool(
        conn_id, lambda pool: download_to_storage(pool, path, ObjectStoragePath(f"file://{tmp_path}/"))
    )
    assert isinstance(written, ObjectStoragePath)
    assert written.read_bytes() == content


# -- permissions (enforced by the OS for a non-root login) ----------------------------------------


def test_permission_denied_on_download_names_the_file(unprivileged_conn_id: str, data: DataSet) -> None:
    with pytest.raises(SFTPPermissionError) as info:
        with_pool(unprivileged_conn_id, lambda pool: download_bytes(pool, data.unreadable))
    message = str(info.value)
    assert f"download of {data.unreadable!r} over SFTP connection {unprivileged_conn_id!r}" in message
    assert "permission denied by the server" in message
    assert isinstance(info.value, PermissionError)


def test_permission_denied_on_upload_keeps_the_others(unprivileged_conn_id: str, data: DataSet) -> None:
    denied = f"{data.read_only_dir}/new.xml"
    allowed = f"{data.writable_dir}/new.xml"

    async def work(pool: SFTPPool) -> list[TransferResult]:
        results = await upload_many(pool, [(b"<a/>", denied), (b"<b/>", allowed)])
        assert pool.statistics().discarded == 0  # refusals do not cost the connection
        return results

    results = with_pool(unprivileged_conn_id, work)
    assert isinstance(results[0].error, SFTPPermissionError)
    assert f"upload of {denied!r}" in str(results[0].error)
    assert results[1].ok and results[1].size == 4
    assert Path(allowed).read_bytes() == b"<b/>" and Path(allowed).stat().st_uid != 0
    assert not Path(denied).exists()


# -- uploads --------------------------------------------------------------------------------------


def test_upload_many_creates_directories_once(conn_id: str, workdir: Path, tmp_path: Path) -> None:
    local = tmp_path / "local.xml"
    local.write_bytes(b"<from-disk/>")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    pairs: list[tuple[Any, str]] = [
        (f"<doc n='{i}'/>".encode(), f"{workdir}/d{i % 3}/sub/{i}.xml") for i in range(60)
    ]
    pairs += [(local, f"{workdir}/from-disk.xml"), (str(big), f"{workdir}/big.bin")]
    pairs += [(tmp_path / "missing.xml", f"{workdir}/never.xml")]

    results = with_pool(conn_id, lambda pool: upload_many(pool, pairs, make_dirs=True, concurrency=20))
    assert [r.ok for r in results] == [True] * 62 + [False]
    for i in range(60):
        assert (workdir / f"d{i % 3}" / "sub" / f"{i}.xml").read_bytes() == f"<doc n='{i}'/>".encode()
    assert (workdir / "from-disk.xml").read_bytes() == b"<from-disk/>"
    assert (workdir / "big.bin").read_bytes() == big.read_bytes()
    assert results[61].size == big.stat().st_size and results[61].local == str(big)
    # a local error is the local OSError, naming the local file
    assert isinstance(results[62].error, FileNotFoundError) and "missing.xml" in str(results[62].error)


def test_upload_file_into_a_missing_directory(conn_id: str, workdir: Path) -> None:
    target = f"{workdir}/not-yet/x.xml"
    with pytest.raises(SFTPTransferError, match=rf"upload of '{target}'"):
        with_pool(conn_id, lambda pool: upload_file(pool, b"<x/>", target))
    assert with_pool(conn_id, lambda pool: upload_file(pool, b"<x/>", target, make_dirs=True)) == 4
    assert Path(target).read_bytes() == b"<x/>"


def test_upload_replaces_a_file_whole_and_leaves_no_temporary_file(conn_id: str, workdir: Path) -> None:
    target = workdir / "report.xml"
    target.write_bytes(b"<old/>")
    big = os.urandom(3 * 1024 * 1024 + 1)  # more than one write request

    async def work(pool: SFTPPool) -> list[TransferResult]:
        await upload_file(pool, b"<new/>", str(target))
        return await upload_many(pool, [(big, f"{workdir}/big.bin"), (b"<x/>", f"{workdir}/x.xml")])

    results = with_pool(conn_id, work)
    assert target.read_bytes() == b"<new/>"
    assert [r.size for r in results] == [len(big), 4]
    assert (workdir / "big.bin").read_bytes() == big
    assert sorted(p.name for p in workdir.iterdir()) == ["big.bin", "report.xml", "x.xml"]


def test_an_upload_cut_off_midway_never_leaves_a_partial_file_under_its_name(
    sshd: SSHServer, make_connection: Any, make_proxy: Any, workdir: Path
) -> None:
    """A real fault: every connection is cut while the file is being written."""
    proxy = make_proxy(sshd, delay=0.02)
    conn_id = make_connection(sshd, via=proxy)
    target = workdir / "feed.bin"
    target.write_bytes(b"yesterday's feed")
    payload = os.urandom(48 * 1024 * 1024)

    def writing() -> bool:
        # New bytes on the server, under whatever name the upload writes them.
        return any(p.stat().st_size not in (0, len(b"yesterday's feed")) for p in workdir.iterdir())

    async def work(pool: SFTPPool) -> BaseException | None:
        upload = asyncio.ensure_future(upload_file(pool, payload, str(target)))
        await eventually(lambda: writing() or upload.done(), "the upload to start writing")
        assert not upload.done(), "the upload finished before the connection could be cut"
        assert proxy.cut() >= 1
        try:
            await upload
        except SFTPTransferError as exc:
            return exc
        return None

    error = with_pool(conn_id, work)
    assert isinstance(error, SFTPTransferError), error
    assert f"upload of {str(target)!r}" in str(error)
    assert target.read_bytes() == b"yesterday's feed"  # the old file, whole, never half the new one


# -- many files at once: the contract of the *_many calls -------------------------------------


def test_many_calls_without_files_return_no_results(conn_id: str) -> None:
    seen: list[TransferResult] = []

    async def work(pool: SFTPPool) -> tuple[list[TransferResult], list[TransferResult]]:
        downloaded = await download_many(pool, [], progress=seen.append)
        uploaded = await upload_many(pool, [], progress=seen.append)
        assert pool.statistics().opened == 0
        return downloaded, uploaded

    assert with_pool(conn_id, work) == ([], [])
    assert seen == []


def test_a_progress_callback_that_raises_ends_the_call_with_its_error(conn_id: str, data: DataSet) -> None:
    paths = list(data.files)[:40]
    done: list[TransferResult] = []
    stop = RuntimeError("enough")

    def progress(result: TransferResult) -> None:
        done.append(result)
        if len(done) == 3:
            raise stop

    async def work(pool: SFTPPool) -> None:
        with pytest.raises(RuntimeError) as info:
            await download_many(pool, paths, concurrency=4, progress=progress)
        assert info.value is stop

    with_pool(conn_id, work)  # (which checks that every client came back)
    assert 3 <= len(done) < len(paths)


@pytest.mark.parametrize("operation", ["download", "upload"])
def test_cancelling_a_many_call_cancels_the_transfers_in_flight(
    sshd: SSHServer,
    data: DataSet,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    workdir: Path,
    tmp_path: Path,
    operation: str,
) -> None:
    proxy = make_proxy(sshd)
    conn_id = make_connection(sshd, via=proxy)
    paths = list(data.files)[:20]

    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            assert await download_bytes(pool, paths[0]) == data.files[paths[0]]  # connected
            proxy.stall()  # every transfer from now on hangs
            try:
                if operation == "download":
                    many = download_many(pool, paths, to=tmp_path, concurrency=4)
                else:
                    pairs = [(b"<x/>", f"{workdir}/{n}.xml") for n in range(20)]
                    many = upload_many(pool, pairs, concurrency=4)
                task = asyncio.ensure_future(many)
                await eventually(lambda: pool.statistics().in_use == 4, "four transfers are in flight")
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                stats = pool.statistics()
                assert (stats.in_use, stats.waiting) == (0, 0), stats
            finally:
                proxy.resume()

    run(main())
    assert list(tmp_path.iterdir()) == []
    assert not [p for p in workdir.iterdir() if not p.name.endswith(".partial")]


# -- speed: the point of the pool ---------------------------------------------------------------


@pytest.mark.slow
def test_pool_beats_a_connection_per_file_through_latency(
    sshd: SSHServer,
    data: DataSet,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
) -> None:
    """10 ms each way. Measured, not tuned: the margin asserted is far below what it shows."""
    proxy = make_proxy(sshd, delay=0.01)
    conn_id = make_connection(sshd, via=proxy)
    paths = list(data.files)
    assert len(paths) == DATA_FILES

    async def pooled() -> float:
        loop = asyncio.get_running_loop()
        async with SFTPPool(conn_id) as pool:
            start = loop.time()
            results = await download_many(pool, paths, concurrency=128)
            elapsed = loop.time() - start
            assert all(r.ok for r in results)
            assert pool.statistics().opened <= 4
        return len(paths) / elapsed

    async def connection_per_file(count: int) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for path in paths[:count]:
            async with SFTPPool(conn_id) as pool:
                await download_bytes(pool, path)
        return count / (loop.time() - start)

    pooled_rate = run(pooled())
    single_rate = run(connection_per_file(10))
    print(f"\n{pooled_rate:.0f} files/s pooled vs {single_rate:.1f} files/s with a connection per file")
    assert pooled_rate > 10 * single_rate
