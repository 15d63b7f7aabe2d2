"""SyncSFTPPool: one paramiko client per thread, reused, replaced when broken, all closed at the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

from airflow_iterate._core import ItemRunner, RunOptions
from airflow_iterate.sftp import SFTPPoolClosedError, SyncSFTPPool

from .conftest import DataSet


def read(pool: SyncSFTPPool, path: str) -> bytes:
    with pool.client() as sftp, sftp.open(path, "rb") as f:
        data: bytes = f.read()
        return data


def test_one_client_per_thread_reused_and_closed(conn_id: str, data: DataSet) -> None:
    paths = list(data.files)[:80]
    clients: dict[str, set[int]] = {}
    lock = threading.Lock()

    def item(index: int, path: str) -> bytes:
        with pool.client() as sftp:
            with lock:
                clients.setdefault(threading.current_thread().name, set()).add(id(sftp))
            with pool.client() as nested:  # the same thread: the same client
                assert nested is sftp
        return read(pool, path)

    with SyncSFTPPool(conn_id) as pool:
        runner: ItemRunner[str, bytes] = ItemRunner(item, RunOptions(concurrency=4), is_async=False)
        assert runner.run(paths) == [data.files[p] for p in paths]
        stats = pool.statistics()
        assert stats.opened == len(clients) <= 4  # (threads that ended early were already pruned)
        assert all(len(ids) == 1 for ids in clients.values())  # reused by every item of the thread
        assert stats.in_use == 0 and stats.reused == 3 * len(paths) - stats.opened
    assert pool.closed and pool.statistics().connections == 0
    with pytest.raises(SFTPPoolClosedError):
        read(pool, paths[0])


def test_status_errors_keep_the_client(conn_id: str) -> None:
    with SyncSFTPPool(conn_id) as pool:
        for _ in range(3):
            with pytest.raises(FileNotFoundError):
                read(pool, "/no/such/file.xml")
        stats = pool.statistics()
        assert (stats.opened, stats.discarded, stats.connections) == (1, 0, 1)


def test_a_broken_client_is_replaced(
    own_sshd: SSHServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    path = own_sshd.data_dir / "a.xml"
    path.write_bytes(b"<a/>")
    proxy = make_proxy(own_sshd)
    conn_id = make_connection(own_sshd, via=proxy)
    with SyncSFTPPool(conn_id, health_check_after=0) as pool:
        assert read(pool, str(path)) == b"<a/>"
        with pytest.raises(Exception), pool.client() as sftp:  # noqa: B017 - paramiko has several
            proxy.cut()
            sftp.stat(str(path))
        assert pool.statistics().discarded == 1
        assert read(pool, str(path)) == b"<a/>"  # the thread's next block reconnects
        own_sshd.restart()
        # Noticed before use (the transport died, or the idle check fails): no error at all.
        assert read(pool, str(path)) == b"<a/>"
        stats = pool.statistics()
        assert (stats.opened, stats.discarded) == (3, 2), stats


def test_idle_clients_are_checked(conn_id: str, data: DataSet) -> None:
    path = next(iter(data.files))
    with SyncSFTPPool(conn_id, health_check_after=0) as pool:
        read(pool, path)
        read(pool, path)
        stats = pool.statistics()
        assert (stats.opened, stats.health_checks) == (1, 1)


def test_threads_that_end_give_their_connection_back(conn_id: str, data: DataSet) -> None:
    path = next(iter(data.files))
    with SyncSFTPPool(conn_id) as pool:
        for _ in range(3):
            with ThreadPoolExecutor(2) as executor:
                list(executor.map(lambda _: read(pool, path), range(6)))
        read(pool, path)  # prunes the finished threads' connections
        assert pool.statistics().connections == 1
        assert pool.statistics().opened <= 7


def test_close_from_another_thread_closes_every_client(conn_id: str, data: DataSet) -> None:
    path = next(iter(data.files))
    pool = SyncSFTPPool(conn_id)
    barrier = threading.Barrier(4, timeout=30)
    results: list[Any] = []

    def worker() -> None:
        results.append(read(pool, path))
        barrier.wait()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    barrier.wait()
    assert pool.statistics().connections == 3
    pool.close()
    for thread in threads:
        thread.join(30)
    assert pool.statistics().connections == 0 and len(results) == 3
