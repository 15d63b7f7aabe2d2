"""The approaches that run in a plain process: each reads every file into memory, returns the bytes read.

Rows 2-4 are the code an Airflow user writes with the sftp provider; they run here directly,
not inside a task instance, so that only the approach is measured (a task adds the same fixed
cost to each). Row 6 is the ceiling: asyncssh's request layer used directly, no Airflow at all.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

#: one read for a whole small file: OpenSSH answers reads of up to 255 KiB in one message
RAW_READ = 255 * 1024
#: the raw client's cipher: AES-GCM runs on the CPU's AES instructions, which makes it several
#: times cheaper than asyncssh's first choice, chacha20-poly1305 (measured: 1.6x the files/s)
RAW_CIPHER = "aes128-gcm@openssh.com"


async def _workers(paths: Sequence[str], concurrency: int, one: Callable[[str], Awaitable[int]]) -> int:
    """``one(path)`` for every path, ``concurrency`` at a time; the sum of what they return."""
    pending = iter(paths)
    total = 0

    async def worker() -> None:
        nonlocal total
        for path in pending:
            # Not `total += await ...`: that reads total before awaiting, losing other workers' adds.
            size = await one(path)
            total += size

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(paths)))))
    return total


# -- 2: the sync hook, one file after another over one connection ------------------------------


def hook_sync(conn_id: str, paths: Sequence[str]) -> int:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    hook = SFTPHook(ssh_conn_id=conn_id)
    total = 0
    # One managed connection for the loop, as a PythonOperator calling the hook would hold it;
    # without it every retrieve_file() would log in again.
    with hook.get_managed_conn():
        for path in paths:
            buffer = io.BytesIO()
            hook.retrieve_file(path, buffer)
            total += buffer.getbuffer().nbytes
    return total


# -- 3: SFTPHookAsync, a new hook (so a new connection) per file --------------------------------


async def hook_async(conn_id: str, paths: Sequence[str], concurrency: int) -> int:
    from airflow.providers.sftp.hooks.sftp import SFTPHookAsync

    async def one(path: str) -> int:
        # A hook of its own: one hook shared by concurrent calls would hand later calls the
        # connection an earlier one still holds, which is pooling by accident.
        buffer = io.BytesIO()
        await SFTPHookAsync(sftp_conn_id=conn_id).retrieve_file(path, buffer)
        return buffer.getbuffer().nbytes

    return await _workers(paths, concurrency, one)


# -- 4: the provider's SFTPClientPool: a whole connection per borrower --------------------------


async def provider_pool(conn_id: str, paths: Sequence[str], pool_size: int | None) -> int:
    from airflow.providers.sftp.pools.sftp import SFTPClientPool

    pool = SFTPClientPool(conn_id, pool_size=pool_size)

    async def one(path: str) -> int:
        async with pool.get_sftp_client() as sftp, sftp.open(path, "rb") as f:
            return len(await f.read())

    try:
        # More borrowers than connections would only queue on the pool's semaphore.
        return await _workers(paths, pool.pool_size, one)
    finally:
        await pool.close()


# -- 6: raw asyncssh, tuned --------------------------------------------------------------------


def _raw_options(conn_id: str) -> tuple[str, int, dict[str, Any]]:
    import asyncssh

    conn = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])
    host, extra = conn["host"], conn["extra"]
    options = {
        "username": conn["login"],
        "client_keys": [asyncssh.import_private_key(extra["private_key"])],
        "known_hosts": asyncssh.import_known_hosts(f"[{host}]:{conn['port']} {extra['host_key']}\n"),
        "encryption_algs": [RAW_CIPHER],
    }
    return host, int(conn["port"]), options


async def raw(conn_id: str, paths: Sequence[str], connections: int, in_flight: int) -> int:
    import asyncssh
    from asyncssh.sftp import FXF_READ

    host, port, options = _raw_options(conn_id)
    ssh = await asyncio.gather(*(asyncssh.connect(host, port, **options) for _ in range(connections)))
    try:
        clients = await asyncio.gather(*(c.start_sftp_client() for c in ssh))
        # asyncssh's request layer: SFTPClient.open() + read() costs two more round trips (a stat
        # for the size, a read past the end) and awaits the close.
        handlers = [c._handler for c in clients]
        closing: set[asyncio.Future[Any]] = set()
        turn = iter(range(len(paths)))

        async def one(path: str) -> int:
            handler = handlers[next(turn) % connections]
            handle = await handler.open(path.encode(), FXF_READ, asyncssh.SFTPAttrs())
            chunks = []
            offset = 0
            while True:
                data, _ = await handler.read(handle, offset, RAW_READ)
                chunks.append(data)
                offset += len(data)
                # A short read of a regular file on OpenSSH is its end.
                if len(data) < RAW_READ:
                    break
            # The answer to a close carries nothing: do not wait a round trip for it.
            closing.add(task := asyncio.ensure_future(handler.close(handle)))
            task.add_done_callback(closing.discard)
            return offset

        total = await _workers(paths, in_flight, one)
        await asyncio.gather(*closing)
        return total
    finally:
        for connection in ssh:
            connection.close()
        await asyncio.gather(*(c.wait_closed() for c in ssh))
