"""SFTPPool against a real sshd: lifecycle, sharing, fairness, cancellation, health and lifetimes."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable

import asyncssh
import pytest
from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer

from airflow_iterate._core import ItemRunner, RunOptions
from airflow_iterate.sftp import (
    SFTPAcquireTimeoutError,
    SFTPPool,
    SFTPPoolClosedError,
    SFTPPoolUsageError,
    download_bytes,
    download_many,
    list_files,
    upload_many,
)
from airflow_iterate.sftp._holders import ConnectionState

from ._util import eventually, run
from .conftest import DataSet


async def ping(pool: SFTPPool) -> None:
    async with pool.client() as sftp:
        await sftp.realpath(".")


async def read_one(pool: SFTPPool, path: str) -> bytes:
    async with pool.client() as sftp, sftp.open(path, "rb") as f:
        data: bytes = await f.read()
        return data


# -- lifecycle --------------------------------------------------------------------------------------


def test_client_is_an_asyncssh_sftp_client_and_the_pool_closes(conn_id: str, data: DataSet) -> None:
    path, content = next(iter(data.files.items()))

    async def main() -> SFTPPool:
        async with SFTPPool(conn_id) as pool:
            async with pool.client() as sftp:
                assert isinstance(sftp, asyncssh.SFTPClient)
            assert await read_one(pool, path) == content
            stats = pool.statistics()
            assert (stats.opened, stats.connections, stats.in_use, stats.acquired, stats.reused) == (
                1,
                1,
                0,
                2,
                1,
            )
        return pool

    pool = run(main())
    assert pool.closed
    assert pool.statistics().connections == 0
    with pytest.raises(SFTPPoolClosedError, match=conn_id):
        run(read_one(pool, path))


def test_a_pool_created_outside_a_loop_binds_to_its_first_loop(conn_id: str, data: DataSet) -> None:
    pool = SFTPPool(conn_id)
    path = next(iter(data.files))

    async def use() -> None:
        await read_one(pool, path)

    run(use())
    with pytest.raises(SFTPPoolUsageError, match="event loop it was first used on"):
        run(use())


def test_closing_fails_waiting_borrowers(conn_id: str) -> None:
    async def main() -> None:
        pool = SFTPPool(conn_id, max_connections=1, borrowers_per_session=1)
        holder_in = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with pool.client():
                holder_in.set()
                await release.wait()

        hold = asyncio.ensure_future(holder())
        await holder_in.wait()
        waiter = asyncio.ensure_future(ping(pool))
        await eventually(lambda: pool.statistics().waiting == 1, "the borrower queues")
        await pool.aclose()
        with pytest.raises(SFTPPoolClosedError, match=conn_id):
            await waiter
        release.set()
        await asyncio.gather(hold, return_exceptions=True)
        assert pool.statistics().in_use == 0

    run(main())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_connections", 0),
        ("sessions_per_connection", True),
        ("borrowers_per_session", 2.0),
        ("max_parallel_connects", -1),
        ("acquire_timeout", -0.5),
        ("idle_timeout", "60"),
        ("max_lifetime", -1),
        ("health_check_after", None),
        ("health_check_timeout", -1.0),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it(option: str, value: object) -> None:
    with pytest.raises(SFTPPoolUsageError, match=rf"^{option} must be .*, got .*{value!r}"):
        SFTPPool("sftp_default", **{option: value})


def test_concurrency_of_the_many_calls_is_checked(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            for call in (
                download_many(pool, ["/a"], concurrency=0),
                upload_many(pool, [(b"", "/a")], concurrency=False),
                list_files(pool, "/", concurrency=-3),
            ):
                with pytest.raises(SFTPPoolUsageError, match=r"^concurrency must be"):
                    await call
            assert pool.statistics().opened == 0

    run(main())


# -- sharing and growth ---------------------------------------------------------------------------


def test_sessions_are_shared_and_connections_open_only_when_saturated(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id, borrowers_per_session=4, max_connections=3) as pool:
            inside = 0
            all_in = asyncio.Event()
            release = asyncio.Event()
            target = 0

            async def borrower() -> None:
                nonlocal inside
                async with pool.client() as sftp:
                    await sftp.realpath(".")
                    inside += 1
                    if inside == target:
                        all_in.set()
                    await release.wait()

            async def hold(n: int) -> list[asyncio.Future[None]]:
                nonlocal target
                target = inside + n
                all_in.clear()
                tasks = [asyncio.ensure_future(borrower()) for _ in range(n)]
                await all_in.wait()
                return tasks

            tasks = await hold(4)
            assert pool.statistics().connections == 1  # four borrowers, one session
            tasks += await hold(1)
            assert pool.statistics().connections == 2  # the first was full
            tasks += await hold(7)
            stats = pool.statistics()
            assert (stats.connections, stats.in_use, stats.opened) == (3, 12, 3)
            extra = asyncio.ensure_future(ping(pool))
            await eventually(lambda: pool.statistics().waiting == 1, "the 13th borrower queues")
            assert pool.statistics().connections == 3  # max_connections holds
            release.set()
            await asyncio.gather(*tasks, extra)
            assert pool.statistics().in_use == 0

    run(main())


def test_64_concurrent_downloads_share_two_connections(
    sshd: SSHServer, data: DataSet, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(sshd, delay=0.01)
    conn = make_connection(sshd, via=proxy)
    paths = list(data.files)[:64]

    async def main() -> None:
        async with SFTPPool(conn) as pool:
            contents = await asyncio.gather(*(download_bytes(pool, p) for p in paths))
            assert contents == [data.files[p] for p in paths]
            stats = pool.statistics()
            # 64 in flight at once over 32 borrowers per session: two connections, not 64
            assert stats.opened == 2, stats
            assert proxy.accepted == 2

    run(main())


def test_connections_open_one_handshake_pair_at_a_time(
    sshd: SSHServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(sshd, delay=0.01)
    conn = make_connection(sshd, via=proxy)

    async def main() -> None:
        async with SFTPPool(conn, max_connections=8, borrowers_per_session=2) as pool:
            peak_opening = 0
            all_open = asyncio.Event()

            async def watch() -> None:
                nonlocal peak_opening
                while pool.statistics().connections < 8:
                    peak_opening = max(peak_opening, pool.statistics().opening)
                    await asyncio.sleep(0.002)
                all_open.set()

            async def borrower() -> None:
                async with pool.client() as sftp:
                    await sftp.realpath(".")
                    await all_open.wait()  # keep demand above capacity until every connection is up

            watcher = asyncio.ensure_future(watch())
            await asyncio.wait_for(asyncio.gather(*(borrower() for _ in range(40))), 30)
            await watcher
            assert pool.statistics().opened == 8
            assert 1 <= peak_opening <= 2

    run(main())


# -- fairness and timeouts ------------------------------------------------------------------------


def test_waiters_are_served_in_arrival_order(conn_id: str) -> None:
    async def main() -> list[int]:
        async with SFTPPool(conn_id, max_connections=1, borrowers_per_session=1) as pool:
            order: list[int] = []
            first_in = asyncio.Event()
            release = asyncio.Event()

            async def first() -> None:
                async with pool.client():
                    first_in.set()
                    await release.wait()

            async def borrower(n: int) -> None:
                async with pool.client() as sftp:
                    order.append(n)
                    await sftp.realpath(".")

            holder = asyncio.ensure_future(first())
            await first_in.wait()
            tasks = []
            for n in range(20):
                tasks.append(asyncio.ensure_future(borrower(n)))
                await eventually(lambda n=n: pool.statistics().waiting == n + 1, f"borrower {n} queues")
            release.set()
            await asyncio.gather(holder, *tasks)
            assert pool.statistics().waits == 21  # the holder waited for the first connection too
            return order

    assert run(main()) == list(range(20))


def test_a_newcomer_does_not_overtake_the_queue(conn_id: str) -> None:
    async def main() -> list[str]:
        async with SFTPPool(conn_id, max_connections=1, borrowers_per_session=1) as pool:
            order: list[str] = []
            holder_in = asyncio.Event()
            release = asyncio.Event()

            async def holder() -> None:
                async with pool.client():
                    holder_in.set()
                    await release.wait()

            async def borrower(name: str) -> None:
                async with pool.client():
                    order.append(name)

            hold = asyncio.ensure_future(holder())
            await holder_in.wait()
            queued = asyncio.ensure_future(borrower("queued"))
            await eventually(lambda: pool.statistics().waiting == 1, "the first waiter queues")
            release.set()
            # Arrives after the release, before the queued borrower has run: must go second.
            late = asyncio.ensure_future(borrower("late"))
            await asyncio.gather(hold, queued, late)
            return order

    assert run(main()) == ["queued", "late"]


def test_acquire_timeout_names_the_connection(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id, max_connections=1, borrowers_per_session=1) as pool:
            async with pool.client():
                with pytest.raises(
                    SFTPAcquireTimeoutError, match=rf"timed out after 0.2s .* {conn_id!r}"
                ) as info:
                    async with pool.client(timeout=0.2):
                        pass
                assert isinstance(info.value, TimeoutError)
                assert pool.statistics().waiting == 0
            async with pool.client(timeout=0.2) as sftp:  # free again
                await sftp.realpath(".")

    run(main())


# -- cancellation ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_thousand_cancelled_borrowers_leak_nothing(
    sshd: SSHServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(sshd, delay=0.01)
    conn = make_connection(sshd, via=proxy)
    rng = random.Random(7)

    async def main() -> None:
        async with SFTPPool(conn, max_connections=3, borrowers_per_session=8) as pool:
            entered = 0
            never = asyncio.Event()

            async def borrower(work: bool) -> None:
                nonlocal entered
                async with pool.client() as sftp:
                    entered += 1
                    if work:
                        await sftp.realpath(".")  # cancelled mid-request
                    await never.wait()

            # 1. cancelled while the first connection is still being opened (10 ms each way)
            batch = [asyncio.ensure_future(borrower(True)) for _ in range(250)]
            await asyncio.sleep(0)
            assert pool.statistics().opening >= 1
            for task in batch:
                task.cancel()
            await asyncio.gather(*batch, return_exceptions=True)

            # 2. cancelled inside the block, mid-request or idle, with others queued behind them
            batch = [asyncio.ensure_future(borrower(n % 2 == 0)) for n in range(350)]
            await eventually(lambda: entered >= 24, "every slot is taken")
            assert pool.statistics().waiting > 0
            rng.shuffle(batch)
            for task in batch:
                task.cancel()
            await asyncio.gather(*batch, return_exceptions=True)

            # 3. random deadlines: cancelled while queued, while connecting, inside
            async def deadline() -> None:
                await asyncio.wait_for(borrower(True), rng.uniform(0.0, 0.15))

            results = await asyncio.gather(*(deadline() for _ in range(400)), return_exceptions=True)
            assert all(isinstance(r, asyncio.TimeoutError) for r in results)

            stats = pool.statistics()
            assert (stats.in_use, stats.waiting) == (0, 0), stats
            assert stats.connections <= 3 and stats.opened <= 3 + stats.discarded, stats
            await eventually(lambda: pool.statistics().opening == 0, "pending opens finish")
            await ping(pool)  # still works
            assert pool.statistics().in_use == 0

    run(main())


def test_a_connection_whose_borrower_was_cancelled_while_opening_is_kept(
    sshd: SSHServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(sshd, delay=0.02)
    conn = make_connection(sshd, via=proxy)

    async def main() -> None:
        async with SFTPPool(conn) as pool:
            task = asyncio.ensure_future(ping(pool))
            await eventually(lambda: pool.statistics().opening == 1, "the connection is being opened")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await eventually(lambda: pool.statistics().connections == 1, "the connection opens anyway")
            stats = pool.statistics()
            assert (stats.in_use, stats.waiting, stats.idle) == (0, 0, 1)
            await ping(pool)
            assert pool.statistics().opened == 1

    run(main())


# -- errors and health ------------------------------------------------------------------------------


def test_sftp_status_errors_keep_the_connection(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            for _ in range(3):
                with pytest.raises(asyncssh.SFTPNoSuchFile):
                    await read_one(pool, "/no/such/file.xml")
            stats = pool.statistics()
            assert (stats.opened, stats.discarded, stats.connections, stats.health_checks) == (1, 0, 1, 0)

    run(main())


def test_transport_errors_discard_the_connection(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            with pytest.raises(asyncssh.ConnectionLost):
                async with pool.client():
                    raise asyncssh.ConnectionLost("link down")
            assert pool.statistics().discarded == 1
            assert pool.statistics().connections == 0
            await ping(pool)
            assert pool.statistics().opened == 2

    run(main())


def test_an_ambiguous_oserror_gets_the_connection_checked_not_dropped(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id) as pool:
            with pytest.raises(OSError):
                async with pool.client():
                    raise OSError(28, "No space left on device (a local disk)")
            await eventually(lambda: pool.statistics().health_checks == 1, "the check runs")
            await ping(pool)
            stats = pool.statistics()
            assert (stats.opened, stats.discarded, stats.connections) == (1, 0, 1)

    run(main())


def test_a_connection_dropped_while_idle_is_noticed_and_replaced(
    sshd: SSHServer, proxy: DelayProxy, make_connection: Callable[..., str]
) -> None:
    conn = make_connection(sshd, via=proxy)

    async def main() -> None:
        async with SFTPPool(conn) as pool:
            await ping(pool)
            assert proxy.cut() == 1
            await eventually(lambda: pool.statistics().connections == 0, "the pool notices the loss")
            assert pool.statistics().discarded == 1
            await ping(pool)
            assert pool.statistics().opened == 2

    run(main())


def test_an_idle_hung_connection_fails_its_health_check_and_is_replaced(
    sshd: SSHServer, proxy: DelayProxy, make_connection: Callable[..., str]
) -> None:
    conn = make_connection(sshd, via=proxy)

    async def main() -> None:
        async with SFTPPool(conn, health_check_after=0.0, health_check_timeout=0.3) as pool:
            await ping(pool)
            await ping(pool)  # idle in between: checked, fine
            assert pool.statistics().health_checks == 1
            proxy.stall()  # the open connection hangs without closing
            await ping(pool)  # served by a new connection
            stats = pool.statistics()
            assert (stats.health_checks, stats.discarded, stats.opened) == (2, 1, 2), stats
            proxy.resume()

    run(main())


def test_idle_connections_close_after_idle_timeout(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id, idle_timeout=0.2) as pool:
            await ping(pool)
            await eventually(lambda: pool.statistics().connections == 0, "the idle connection closes")
            assert pool.statistics().expired == 1
            await ping(pool)
            assert pool.statistics().opened == 2

    run(main())


def test_old_connections_retire_after_their_borrowers_leave(conn_id: str) -> None:
    async def main() -> None:
        async with SFTPPool(conn_id, max_lifetime=0.3) as pool:
            async with pool.client() as sftp:
                await eventually(lambda: pool.statistics().opened == 1 and _retiring(pool), "it retires")
                await sftp.realpath(".")  # still usable by its borrower
                await ping(pool)  # a newcomer gets a new connection
                assert pool.statistics().opened == 2
            await eventually(lambda: pool.statistics().expired >= 1, "the retired connection closes")

    run(main())


def _retiring(pool: SFTPPool) -> bool:
    return any(conn.state is ConnectionState.DRAINING for conn in pool._connections)


# -- event loops, shared pools, the iterate engine ----------------------------------------------


def test_shared_pool_is_one_per_loop_and_closes_with_it(conn_id: str) -> None:
    seen: list[SFTPPool] = []

    async def main() -> None:
        pool = SFTPPool.shared(conn_id)
        assert SFTPPool.shared(conn_id) is pool
        await ping(pool)
        seen.append(pool)

    run(main())
    run(main())
    first, second = seen
    assert first is not second
    assert first.closed and second.closed
    assert first.statistics().connections == 0


def test_shared_pool_rejects_different_options(conn_id: str) -> None:
    async def main() -> None:
        SFTPPool.shared(conn_id, max_connections=2)
        with pytest.raises(SFTPPoolUsageError, match="same options"):
            SFTPPool.shared(conn_id, max_connections=3)

    run(main())


def test_shared_pool_option_errors_show_no_secret(sshd: SSHServer) -> None:
    """The SDK's Connection repr shows the password and the extras (private key included)."""
    from airflow.sdk import Connection

    from airflow_iterate.sftp._settings import settings_from_connection

    connection = Connection(
        conn_id="partner",
        conn_type="sftp",
        host=sshd.host,
        port=sshd.port,
        login="someone",
        password="hunter2-password",
        extra=json.dumps({"private_key": sshd.client_private_key, "host_key": sshd.host_public_key}),
    )
    key_line = sshd.client_private_key.splitlines()[1]

    async def main() -> str:
        SFTPPool.shared("partner", connection=connection)
        with pytest.raises(SFTPPoolUsageError, match="same options") as info:
            SFTPPool.shared("partner", connection=connection, max_connections=2)
        return str(info.value)

    message = run(main())
    settings = settings_from_connection(connection)
    for shown in (message, repr(settings), str(settings)):
        assert "hunter2-password" not in shown and key_line not in shown, shown
    assert "'partner'" in message and "max_connections=2" in message


def test_iterate_engine_items_share_one_pool(conn_id: str, data: DataSet) -> None:
    paths = list(data.files)[:200]
    pools: set[SFTPPool] = set()

    async def item(index: int, path: str) -> int:
        pool = SFTPPool.shared(conn_id)
        pools.add(pool)
        return len(await download_bytes(pool, path))

    runner: ItemRunner[str, int] = ItemRunner(item, RunOptions(concurrency=32), is_async=True)
    sizes = runner.run(paths)
    assert sizes == [len(data.files[p]) for p in paths]
    (pool,) = pools
    stats = pool.statistics()
    assert stats.opened == 1 and stats.acquired == 200
    assert pool.closed
