"""``python -m benchmarks.http_library``: aiohttp against httpx, raw, on the HTTP test server.

Measured to choose the library ``airflow_iterate.http`` is built on. Each run is a process of
its own making ``--requests`` GETs of record details (2–10 KB of JSON) from
``devtools.http_server`` (uvicorn), ``--concurrency`` at a time over at most ``--connections``
connections, through the delay proxy (``--rtt-ms``, 20 by default; the proxy is a thread of this
process, never of a measured one) and then directly (~0 ms; ``--no-zero-rtt`` skips it). Clients
take turns, in an order that rotates each round, so that a slow minute of the machine falls on
all of them. Reported per client: requests per second and CPU per request of the client process
(the requests alone, imports left out), median and range over the rounds, and the server's CPU.

``--clients`` adds ``provider`` (the http provider's ``HttpAsyncHook.session()`` path) and
``airflow_iterate`` (this package's client) to the two libraries. Results go to
``benchmarks/results/http_library.{md,json}`` (``--quick``: ``.bench/quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer

from .._output import REPO_ROOT, add_out_argument, output_directory
from ._client import CONN_ID

DEFAULT_CLIENTS = ("aiohttp", "httpx")


def _versions() -> dict[str, str]:
    found = {}
    for name in ("aiohttp", "httpx", "httpcore", "uvicorn", "httptools", "apache-airflow-providers-http"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _run_client(client: str, url: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.http_library._client",
        "--client",
        client,
        "--url",
        url,
        "--requests",
        str(args.requests),
        "--records",
        str(args.records),
        "--concurrency",
        str(args.concurrency),
        "--connections",
        str(args.connections),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{client} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _server_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_library", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--no-zero-rtt", action="store_true")
    parser.add_argument("--clients", default=",".join(DEFAULT_CLIENTS))
    parser.add_argument("--quick", action="store_true", help="1,000 requests, 2 rounds")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.rounds = 1000, 2
    args.records = 10_000
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    out = output_directory(args)
    out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-http-"))
    server = HTTPTestServer(home / "server", records=args.records, record_requests=False).start()
    proxy = (
        DelayProxy(server.host, server.port, delay=args.rtt_ms / 2000).start() if args.rtt_ms > 0 else None
    )
    links = []
    if proxy is not None:
        links.append((f"{args.rtt_ms:g} ms", proxy.port))
    if not args.no_zero_rtt or proxy is None:
        links.append(("~0 ms", server.port))
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    started = time.monotonic()
    try:
        for link, port in links:
            url = f"http://127.0.0.1:{port}"
            env = dict(os.environ)
            env.update(
                AIRFLOW_HOME=str(home / "airflow"),
                AIRFLOW__CORE__LOAD_EXAMPLES="False",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            )
            env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
            )
            for round_number in range(args.rounds):
                order = clients[round_number % len(clients) :] + clients[: round_number % len(clients)]
                for client in order:
                    server.reset()
                    cpu_before = _server_cpu(server.pid or 0)
                    result = _run_client(client, url, args, env)
                    result["server_cpu"] = _server_cpu(server.pid or 0) - cpu_before
                    result["connections"] = server.stats().connections_opened
                    rows.setdefault(link, {}).setdefault(client, []).append(result)
                    print(
                        f"{link:>7} round {round_number + 1} {client:>16}: "
                        f"{result['requests'] / result['wall']:7.0f} req/s, "
                        f"{result['cpu'] / result['requests'] * 1e6:6.0f} us CPU/req, "
                        f"{result['failures']} failed, {result['connections']} connections",
                        flush=True,
                    )
    finally:
        if proxy is not None:
            proxy.close()
        server.close()
    _report(out, args, rows, time.monotonic() - started)


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    rates = [r["requests"] / r["wall"] for r in runs]
    cpu = [r["cpu"] / r["requests"] * 1e6 for r in runs]
    server = [r["server_cpu"] / r["requests"] * 1e6 for r in runs]
    return {
        "rate_median": statistics.median(rates),
        "rate_min": min(rates),
        "rate_max": max(rates),
        "cpu_us_median": statistics.median(cpu),
        "cpu_us_min": min(cpu),
        "cpu_us_max": max(cpu),
        "server_cpu_us_median": statistics.median(server),
        "failures": sum(r["failures"] for r in runs),
        "connections_max": max(r["connections"] for r in runs),
    }


def _report(out: Path, args: argparse.Namespace, rows: dict[str, Any], seconds: float) -> None:
    machine = f"{psutil.cpu_count()} cores, {platform.processor() or platform.machine()}"
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "machine": machine,
        "versions": _versions(),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "connections": args.connections,
        "rounds": args.rounds,
        "seconds": round(seconds, 1),
    }
    summaries = {
        link: {c: _summary(runs) for c, runs in by_client.items()} for link, by_client in rows.items()
    }
    (out / "http_library.json").write_text(
        json.dumps({"meta": meta, "summaries": summaries, "runs": rows}, indent=1)
    )
    lines = [
        "# HTTP library for airflow_iterate.http: aiohttp or httpx",
        "",
        f"`python -m benchmarks.http_library`, {meta['date']}, {machine}, CPython {meta['python']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + ".",
        "",
        f"{args.requests:,} GETs of 2–10 KB JSON records from `devtools.http_server` (uvicorn, one process), "
        f"{args.concurrency} at a time over at most {args.connections} connections, each run a process of "
        f"its own; {args.rounds} rounds, clients in turns. Median (min–max) over the rounds. Client CPU is "
        "the measured process's, for the requests alone.",
        "",
        "| RTT | client | requests/s | client CPU µs/req | server CPU µs/req | connections | failed |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for link, by_client in summaries.items():
        for client, s in by_client.items():
            lines.append(
                f"| {link} | {client} | {s['rate_median']:,.0f} ({s['rate_min']:,.0f}–{s['rate_max']:,.0f}) "
                f"| {s['cpu_us_median']:.0f} ({s['cpu_us_min']:.0f}–{s['cpu_us_max']:.0f}) "
                f"| {s['server_cpu_us_median']:.0f} | {s['connections_max']} | {s['failures']} |"
            )
    (out / "http_library.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
