"""Subprocess entry point for one plain-process row: make the calls, time them, write JSON.

``python -m benchmarks.http._client_main ROW --conn-id ID --base-url URL --count N
--concurrency C --json-out FILE``

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

from benchmarks.sftp._accounting import self_cpu

from . import _clients

ROWS = ("hook_sync", "hook_async_per_call", "hook_async_session", "raw_httpx", "raw_aiohttp")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--conn-id", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()
    # The hooks log every request at INFO; a task's log would carry them, here they would only
    # fill the row's log file.
    logging.basicConfig(level=logging.WARNING)

    if args.row == "hook_sync":
        # Imported before the window, as a task's imports happen before it runs.
        import airflow.providers.http.hooks.http

        def run() -> int:
            return _clients.hook_sync(args.conn_id, args.count)
    elif args.row == "hook_async_per_call":
        import airflow.providers.http.hooks.http

        def run() -> int:
            return asyncio.run(_clients.hook_async_per_call(args.conn_id, args.count, args.concurrency))
    elif args.row == "hook_async_session":
        import airflow.providers.http.hooks.http  # noqa: F401

        def run() -> int:
            return asyncio.run(_clients.hook_async_session(args.conn_id, args.count, args.concurrency))
    else:
        client = args.row.removeprefix("raw_")
        __import__(client)

        def run() -> int:
            return asyncio.run(_clients.RAW[client](args.base_url, args.count, args.concurrency))

    cpu_before = self_cpu()
    start = time.perf_counter()
    total = run()
    wall = time.perf_counter() - start
    cpu = self_cpu() - cpu_before
    args.json_out.write_text(json.dumps({"calls": args.count, "bytes": total, "wall": wall, "cpu": cpu}))
    # Airflow's exit handlers take a second or more and have nothing left to do here.
    os._exit(0)


if __name__ == "__main__":
    main()
