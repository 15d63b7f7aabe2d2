"""Faults mid-run: the server restarts, the link drops or hangs. Retrying failed files completes the job,
with every file exactly once and nothing partial left behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

from airflow_iterate.sftp import (
    SFTPConnectError,
    SFTPConnectionLostError,
    SFTPPool,
    TransferResult,
    download_bytes,
    download_many,
    upload_many,
)

from ._util import run

FILES = 300
MAX_ATTEMPTS = 10


def make_files(server: SSHServer) -> dict[str, bytes]:
    files = {}
    for i in range(FILES):
        path = server.data_dir / "in" / f"d{i % 4}" / f"{i:04d}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        content = f"<doc n='{i}'>{os.urandom(300 + i * 7).hex()}</doc>".encode()
        path.write_bytes(content)
        files[str(path)] = content
    return files


async def download_with_retries(
    pool: SFTPPool, paths: list[str], target: Path, root: str, on_result: Callable[[TransferResult], object]
) -> tuple[int, list[BaseException]]:
    """The caller's retry loop: returns the attempts it took and the errors of failed files."""
    pending = paths
    errors: list[BaseException] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        results = await download_many(
            pool, pending, to=target, remote_root=root, concurrency=64, progress=on_result
        )
        errors += [r.error for r in results if r.error is not None]
        pending = [r.remote_path for r in results if not r.ok]
        if not pending:
            return attempt, errors
    raise AssertionError(f"{len(pending)} file(s) still failing after {MAX_ATTEMPTS} attempts: {errors[-3:]}")


def assert_exactly_once(files: dict[str, bytes], root: str, target: Path) -> None:
    written = sorted(p for p in target.rglob("*") if p.is_file())
    assert len(written) == len(files), "a file is missing or duplicated"
    for remote, content in files.items():
        assert (target / Path(remote).relative_to(root)).read_bytes() == content
    assert not [p for p in written if p.name.endswith(".partial")]


def assert_only_transient_errors(errors: list[BaseException]) -> None:
    assert errors, "the fault happened after every file was done: nothing was tested"
    for error in errors:
        assert isinstance(error, (SFTPConnectionLostError, SFTPConnectError)), repr(error)
        if isinstance(error, SFTPConnectError):
            assert error.transient, error


@pytest.mark.slow
def test_sshd_restarted_mid_run(
    own_sshd: SSHServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    tmp_path: Path,
) -> None:
    files = make_files(own_sshd)
    root = str(own_sshd.data_dir / "in")
    proxy = make_proxy(own_sshd, delay=0.005)
    conn_id = make_connection(own_sshd, via=proxy)

    async def main() -> None:
        done = 0
        halfway = asyncio.Event()

        def on_result(result: TransferResult) -> None:
            nonlocal done
            if not result.ok:  # failures come in bursts right after a fault: count work done
                return
            done += 1
            if done == FILES // 3:
                halfway.set()

        async def restart_at_a_third() -> None:
            await halfway.wait()
            sessions = own_sshd.session_pids()
            assert sessions, "the restart must hit live connections"
            await asyncio.to_thread(own_sshd.restart)

        async with SFTPPool(conn_id) as pool:
            restarter = asyncio.ensure_future(restart_at_a_third())
            attempts, errors = await download_with_retries(pool, list(files), tmp_path, root, on_result)
            await restarter
            stats = pool.statistics()
            assert attempts >= 2
            assert stats.discarded >= 1 and stats.opened >= 2, stats
            assert (stats.in_use, stats.waiting) == (0, 0), stats
        assert_only_transient_errors(errors)

    run(main())
    assert_exactly_once(files, root, tmp_path)


@pytest.mark.slow
def test_proxy_cuts_connections_mid_run(
    own_sshd: SSHServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    tmp_path: Path,
) -> None:
    files = make_files(own_sshd)
    root = str(own_sshd.data_dir / "in")
    proxy = make_proxy(own_sshd, delay=0.005)
    conn_id = make_connection(own_sshd, via=proxy)
    cuts: list[int] = []

    async def main() -> None:
        done = 0

        def on_result(result: TransferResult) -> None:
            nonlocal done
            if not result.ok:  # failures come in bursts right after a fault: count work done
                return
            done += 1
            if done in (FILES // 4, FILES // 2):
                cuts.append(proxy.cut())

        async with SFTPPool(conn_id) as pool:
            attempts, errors = await download_with_retries(pool, list(files), tmp_path, root, on_result)
            stats = pool.statistics()
            assert attempts >= 2
            assert stats.discarded >= 2, stats
            assert (stats.in_use, stats.waiting) == (0, 0), stats
        assert_only_transient_errors(errors)

    run(main())
    assert len(cuts) == 2 and all(cuts), cuts
    assert_exactly_once(files, root, tmp_path)


@pytest.mark.slow
def test_uploads_survive_cuts(
    own_sshd: SSHServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
) -> None:
    proxy = make_proxy(own_sshd, delay=0.005)
    conn_id = make_connection(own_sshd, via=proxy)
    target = own_sshd.data_dir / "out"
    wanted = {f"{target}/d{i % 5}/{i:04d}.xml": f"<up n='{i}'/>".encode() * (i + 1) for i in range(200)}

    async def main() -> None:
        done = 0

        def on_result(result: TransferResult) -> None:
            nonlocal done
            if not result.ok:  # failures come in bursts right after a fault: count work done
                return
            done += 1
            if done == 70:
                proxy.cut()

        async with SFTPPool(conn_id) as pool:
            pending = list(wanted)
            for _ in range(MAX_ATTEMPTS):
                results = await upload_many(
                    pool, [(wanted[p], p) for p in pending], make_dirs=True, progress=on_result
                )
                pending = [r.remote_path for r in results if not r.ok]
                if not pending:
                    break
            assert not pending
            assert pool.statistics().discarded >= 1

    run(main())
    written = sorted(str(p) for p in target.rglob("*") if p.is_file())
    assert written == sorted(wanted)
    for path, content in wanted.items():
        assert Path(path).read_bytes() == content


def test_a_hung_connection_stops_getting_work(
    sshd: SSHServer, proxy: DelayProxy, make_connection: Callable[..., str]
) -> None:
    """Callers time out on a hung link; the pool checks it, drops it and moves on."""
    conn_id = make_connection(sshd, via=proxy)
    path = sshd.data_dir / "hung.xml"
    path.write_bytes(b"<hung/>")

    async def main() -> None:
        async with SFTPPool(conn_id, health_check_timeout=0.3) as pool:
            assert await download_bytes(pool, str(path)) == b"<hung/>"
            proxy.stall()  # the open connection hangs without closing; new ones work
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(download_bytes(pool, str(path)), 1.5)
            # The cancelled borrower's session had answered nobody for over a second: checked, dropped.
            assert await download_bytes(pool, str(path)) == b"<hung/>"
            stats = pool.statistics()
            assert (stats.discarded, stats.opened, stats.health_checks) == (1, 2, 1), stats
            proxy.resume()

    run(main())
