"""Measure small-file downloads through a delayed link: ``python -m tests.sftp._bench [--files N]``.

Starts a throwaway sshd and a :class:`DelayProxy` (10 ms each way by default, so 20 ms round trips)
and downloads the same small XML files in several ways:

* a connection per file, one file at a time (what a hook call per item amounts to);
* the sftp provider's ``SFTPClientPool`` (a whole connection per borrower), at its default size
  and at the items' concurrency;
* :class:`airflow_iterate.sftp.SFTPPool` with its defaults, at two concurrencies.

Printed, never asserted. The proxy shares the process (and its GIL) with the client, so absolute
numbers understate a real client; the ratios are the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable

from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHServer, current_user, make_server_directory, remove_server_directory

from airflow_iterate.sftp import SFTPPool, download_bytes, download_many


def _files(server: SSHServer, count: int) -> list[str]:
    rng = random.Random(1)
    paths = []
    for i in range(count):
        path = server.data_dir / "bench" / f"{i:05d}.xml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"<doc>" + rng.randbytes(rng.randint(500, 6000)).hex().encode() + b"</doc>")
        paths.append(str(path))
    return paths


async def _timed(count: int, work: Callable[[], Awaitable[object]]) -> float:
    start = time.monotonic()
    await work()
    return count / (time.monotonic() - start)


async def connection_per_file(conn_id: str, paths: list[str]) -> float:
    async def work() -> None:
        for path in paths:
            async with SFTPPool(conn_id) as pool:
                await download_bytes(pool, path)

    return await _timed(len(paths), work)


async def provider_pool(conn_id: str, paths: list[str], concurrency: int, pool_size: int | None) -> float:
    from airflow.providers.sftp.pools.sftp import SFTPClientPool

    SFTPClientPool._instances.pop(conn_id, None)  # a process-wide singleton: start fresh
    pool = SFTPClientPool(conn_id, pool_size=pool_size)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(path: str) -> None:
        async with semaphore, pool.get_sftp_client() as sftp, sftp.open(path, "rb") as f:
            await f.read()

    async def work() -> None:
        await asyncio.gather(*(one(p) for p in paths))

    try:
        return await _timed(len(paths), work)
    finally:
        await pool.close()


async def ours(conn_id: str, paths: list[str], concurrency: int) -> tuple[float, str]:
    async with SFTPPool(conn_id) as pool:
        rate = await _timed(len(paths), lambda: download_many(pool, paths, concurrency=concurrency))
        stats = pool.statistics()
    return rate, f"{stats.opened} connection(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.01, help="one-way delay in seconds")
    parser.add_argument("--sequential-files", type=int, default=25)
    args = parser.parse_args()

    directory = make_server_directory()
    server = SSHServer(directory)
    server.start()
    proxy = DelayProxy(server.host, server.port, delay=args.delay).start()
    conn_id = "sftp_bench"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {
            "conn_type": "sftp",
            "host": proxy.host,
            "port": proxy.port,
            "login": current_user(),
            "extra": server.connection_extra(),
        }
    )
    try:
        paths = _files(server, args.files)
        print(f"{args.files} files of 1-12 KB, {args.delay * 1000:g} ms each way ({sys.version.split()[0]})")
        rows: list[tuple[str, float, str]] = []
        rate = asyncio.run(connection_per_file(conn_id, paths[: args.sequential_files]))
        rows.append(("a connection per file, one at a time", rate, f"{args.sequential_files} files"))
        for size in (None, 32):
            rate = asyncio.run(provider_pool(conn_id, paths, 32, size))
            label = f"provider SFTPClientPool(pool_size={size or os.cpu_count()}), 32 items in flight"
            rows.append((label, rate, f"{size or os.cpu_count()} connection(s)"))
        rate, note = asyncio.run(ours(conn_id, paths[: args.sequential_files * 4], 1))
        rows.append(
            ("one connection (SFTPPool), one file at a time", rate, f"{args.sequential_files * 4} files")
        )
        for concurrency in (32, 128):
            rate, note = asyncio.run(ours(conn_id, paths, concurrency))
            rows.append((f"SFTPPool defaults, {concurrency} items in flight", rate, note))
        for label, rate, note in rows:
            print(f"{label:<62} {rate:8.1f} files/s   ({note})")
    finally:
        proxy.close()
        server.stop()
        remove_server_directory(directory)


if __name__ == "__main__":
    main()
