"""concurrency="auto" against a real sshd that sheds handshakes (a tight OpenSSH MaxStartups)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from devtools.sshd import SSHServer, make_server_directory, remove_server_directory

from airflow_iterate._core import ItemRunner, RunOptions
from airflow_iterate.sftp import SFTPConnectError, SFTPPool, download_bytes

from .conftest import _require_sshd

pytestmark = pytest.mark.slow

FILES = 60


@pytest.fixture
def strict_sshd() -> Iterator[SSHServer]:
    """Drops every unauthenticated connection beyond 2 at once, as a busy partner's server would."""
    _require_sshd()
    directory = make_server_directory()
    server = SSHServer(directory, max_startups="2:100:2")
    for n in range(FILES):
        (server.data_dir / f"{n}.txt").write_text(f"file {n}\n")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        remove_server_directory(directory)


def fetch_each_over_its_own_connection(conn_id: str, root: str) -> Callable[[int, int], object]:
    async def fetch(position: int, n: int) -> bytes:
        async with SFTPPool(conn_id) as pool:  # one handshake per item, as a hook per call makes
            return await download_bytes(pool, f"{root}/{n}.txt")

    return fetch


def test_a_fixed_concurrency_loses_items_to_dropped_handshakes(
    strict_sshd: SSHServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(strict_sshd)
    runner: ItemRunner[int, bytes] = ItemRunner(
        fetch_each_over_its_own_connection(conn_id, str(strict_sshd.data_dir)),
        RunOptions(concurrency=16, max_failures=None),
        is_async=True,
    )
    runner.run(range(FILES))
    assert runner.failures, "the server was expected to drop some of 16 simultaneous handshakes"
    assert all(isinstance(f.exception, SFTPConnectError) for f in runner.failures)


def test_auto_concurrency_backs_off_and_loses_nothing(
    strict_sshd: SSHServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(strict_sshd)
    runner: ItemRunner[int, bytes] = ItemRunner(
        fetch_each_over_its_own_connection(conn_id, str(strict_sshd.data_dir)),
        RunOptions(concurrency="auto", max_concurrency=16),  # item_retries=0, max_failures=0
        is_async=True,
    )
    results = runner.run(range(FILES))
    assert results == [f"file {n}\n".encode() for n in range(FILES)]
    stats = runner.statistics()
    assert stats.failed == 0 and stats.retried == 0
    assert stats.overloaded > 0  # it did meet the limit, and backed off instead of failing
