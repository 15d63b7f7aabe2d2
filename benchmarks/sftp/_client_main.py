"""Subprocess entry point for one plain-process row: read the files, time it, write JSON.

``python -m benchmarks.sftp._client_main ROW --conn-id ID --manifest FILE --count N --json-out FILE``

The CPU time reported covers the timed window only (every thread of this process); the caller
also gets the whole process's CPU time and peak RSS from wait4().
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from pathlib import Path

from . import _clients
from ._accounting import self_cpu
from ._config import HOOK_ASYNC_CONCURRENCY, RAW_CONNECTIONS, RAW_IN_FLIGHT

ROWS = ("hook_sync", "hook_async", "provider_pool", "raw")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--conn-id", required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--pool-size", type=int, default=None, help="provider_pool: None is its default")
    parser.add_argument("--connections", type=int, default=RAW_CONNECTIONS, help="raw: SSH connections")
    parser.add_argument("--in-flight", type=int, default=RAW_IN_FLIGHT, help="raw: files in flight")
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()
    # asyncssh logs every channel at INFO and the provider's hooks every file: a real task's log
    # would carry them, but here they would only fill the row's log file.
    logging.basicConfig(level=logging.WARNING)

    paths = json.loads(args.manifest.read_text())["paths"][: args.count]
    if args.row == "hook_sync":
        # Imported before the window, as a task's imports happen before it runs.
        import airflow.providers.sftp.hooks.sftp

        def run() -> int:
            return _clients.hook_sync(args.conn_id, paths)
    elif args.row == "hook_async":
        import airflow.providers.sftp.hooks.sftp

        def run() -> int:
            return asyncio.run(_clients.hook_async(args.conn_id, paths, HOOK_ASYNC_CONCURRENCY))
    elif args.row == "provider_pool":
        import airflow.providers.sftp.pools.sftp  # noqa: F401

        def run() -> int:
            return asyncio.run(_clients.provider_pool(args.conn_id, paths, args.pool_size))
    else:
        import asyncssh  # noqa: F401

        def run() -> int:
            return asyncio.run(_clients.raw(args.conn_id, paths, args.connections, args.in_flight))

    cpu_before = self_cpu()
    start = time.perf_counter()
    total = run()
    wall = time.perf_counter() - start
    cpu = self_cpu() - cpu_before
    args.json_out.write_text(json.dumps({"files": len(paths), "bytes": total, "wall": wall, "cpu": cpu}))
    # Airflow's exit handlers take a second or more and have nothing left to do here.
    os._exit(0)


if __name__ == "__main__":
    main()
