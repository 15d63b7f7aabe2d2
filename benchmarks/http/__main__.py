"""``python -m benchmarks.http [--quick] [--rtt-ms MS] [--zero-rtt] [--only KEYS] [--out DIR]``.

10,000 detail GETs in each of the proposal's ways, each in a process of its own (rows 1, 2 and 5's
DB load in a real PostgreSQL-backed deployment with a triggerer), and a 1,000-page listing; then
writes http.json, http.md and http.png to the output directory (benchmarks/results by default).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import socket
import sys
import time
from importlib.metadata import version
from typing import Any

import psutil
from tests.e2e._deployment import is_loopback

from benchmarks._output import add_out_argument, output_directory
from benchmarks._profiling import add_profile_arguments, check_profile_arguments
from benchmarks.overhead._env import AirflowHome
from benchmarks.overhead._machine import describe

from ._config import CALLS, DEFAULT_RTT_MS, FULL, PAGE_SIZE, PAGES, QUICK
from ._postgres import PostgresServer, server_version
from ._results import Measurement
from ._rows import RowRunner, row_specs
from ._servers import Servers
from ._servers import server_version as http_server_version

_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    # stderr, so that stdout carries nothing but the report
    print(f"[http {time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def _client_versions() -> str:
    names = ("apache-airflow-providers-http", "aiohttp", "httpx", "requests", "psycopg2-binary", "asyncpg")
    return ", ".join(f"{name} {version(name)}" for name in names)


def _listening(pids: list[int]) -> list[str]:
    """Every listening TCP socket of these processes' trees; raises if one is not on loopback."""
    found, outside = [], []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    for conn in process.net_connections(kind="inet"):
                        if conn.type == socket.SOCK_STREAM and conn.status == psutil.CONN_LISTEN:
                            entry = f"{process.name()} {conn.laddr.ip}:{conn.laddr.port}"
                            found.append(entry)
                            if not is_loopback(conn.laddr.ip):
                                outside.append(entry)
    if outside:
        raise RuntimeError("listening beyond loopback: " + ", ".join(outside))
    return sorted(set(found))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 calls and small subsets: about 3 minutes")
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=DEFAULT_RTT_MS,
        help="round trip added by the delay proxy (default 20)",
    )
    parser.add_argument(
        "--zero-rtt", action="store_true", help="also measure the plain-process rows directly, at ~0 ms"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated row keys (e.g. raw_aiohttp,iterate,deferrable): print, write nothing",
    )
    add_out_argument(parser)
    parser.add_argument("--keep-home", action="store_true", help="keep the AIRFLOW_HOMEs with every log")
    add_profile_arguments(parser, rows="plain row or dag.test() row")
    parser.add_argument(
        "--rerender", action="store_true", help="measure nothing: remake http.md and http.png from http.json"
    )
    args = parser.parse_args(argv)
    args.out = output_directory(args)
    check_profile_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.rerender:
        from ._publish import render

        print(render(args.out))
        return
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else None
    started = time.perf_counter()
    machine = describe()  # before the benchmark's own load shows in the load average
    load_before = os.getloadavg()

    postgres = PostgresServer()
    home = AirflowHome(max_map_length=max(sizes.expand, sizes.deferrable))
    home.variables.update(postgres.environment())
    home.activate()  # before anything imports Airflow, here or in a row's subprocess
    servers = Servers(max(CALLS, PAGES * PAGE_SIZE), args.rtt_ms, zero_rtt=args.zero_rtt)
    rows: list[Measurement] = []
    deployment: dict[str, Any] = {}
    try:
        postgres.start()
        _progress(f"PostgreSQL on 127.0.0.1:{postgres.port}; migrating the metadata DB")
        home.migrate()
        servers.start()
        deployment["listening"] = _listening([os.getpid(), servers.server_pid(), postgres.pid])
        _progress(f"HTTP server, proxy and PostgreSQL listening on loopback only: {deployment['listening']}")
        runner = RowRunner(
            servers,
            postgres,
            home.log_dir,
            sizes.attempts,
            _progress,
            job=CALLS,
            profile=args.profile_format if args.profile else None,
        )
        for link in servers.links():
            for spec in row_specs(sizes):
                if only is None or spec.key in only:
                    rows.append(runner.measure(spec, link))
        # Imported only now: the harness lives in the tests, which plain rows never need.
        from ._scheduler import DeploymentRows

        deployed = DeploymentRows(
            servers,
            postgres,
            servers.links()[0],
            sizes,
            _progress,
            job_calls=CALLS,
            job_pages=PAGES,
            only=only,
            keep_home=args.keep_home,
        )
        rows = deployed.measure() + rows
        deployment.update(deployed.info)
    finally:
        servers.stop()
        postgres.stop()
        if args.keep_home:
            _progress(f"kept {home.path}")
        else:
            home.remove()
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    if only is not None:
        for row in rows:
            db = row.db_per_1000()
            print(
                f"{row.key:<30} {row.link:<7} {row.calls:>6,} {row.wall:8.2f} s "
                f"{row.calls_per_second:9.1f}/s  cpu {row.cpu:6.2f} s  server {row.server_cpu:5.2f} s  "
                f"other {row.other_cpu:5.2f} s"
                + (f"  db/1k: {db.transactions:,.0f} tx {db.written:,.0f} rows" if db else "")
                + (f"  FAILED {row.error}" if row.error else "")
            )
        return

    from ._publish import render, save, snapshot

    command = "python -m benchmarks.http" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    run_info = {
        "Command": f"`{command.strip()}`",
        "Runtime": f"{elapsed / 60:.1f} min",
        "Load average at the end": " / ".join(f"{load:.2f}" for load in load_after),
        "Calls": f"{sizes.calls:,} GETs of record details (2-10 KB of JSON), a listing of "
        f"{PAGES:,} pages of {PAGE_SIZE}",
        "Server": f"devtools.http_server ({http_server_version()}) on 127.0.0.1",
        "Metadata DB": server_version(),
        "Clients": _client_versions(),
    }
    del load_before
    saved = snapshot(
        machine=machine,
        run_info=run_info,
        rtt_ms=args.rtt_ms,
        sizes=sizes,
        links=[(link.name, link.rtt_ms) for link in servers.links()],
        rows=rows,
        deployment=deployment,
    )
    save(args.out, saved)
    print(render(args.out))
    _progress(f"wrote {args.out / 'http.md'} and {args.out / 'http.png'} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
