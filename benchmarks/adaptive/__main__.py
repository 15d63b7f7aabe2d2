"""``python -m benchmarks.adaptive [--quick] [--set NAME=VALUE ...] [--only PARTS] [--cases KEYS]
[--out DIR] [--rerender]``.

Measures ``concurrency="auto"`` against a sweep of fixed concurrencies for each server profile,
then a capacity change and two chunks sharing a server; writes adaptive.json, adaptive.md and
adaptive.png to the output directory (benchmarks/results by default). ``--set`` changes a
constant of the adaptive limit for this run only (to try other parameters); with it, or with
``--only`` / ``--cases`` (a part of the run), the results go to .bench/adaptive-trial unless
``--out`` says otherwise, never over the published ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from benchmarks._output import REPO_ROOT, add_out_argument, output_directory
from benchmarks.overhead._env import AirflowHome
from benchmarks.overhead._machine import describe

from ._config import FULL, QUICK
from ._load import LoadMonitor

RESULTS = "adaptive.json"
TRIAL_RESULTS = REPO_ROOT / ".bench" / "adaptive-trial"

_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    # stderr, so that stdout carries nothing but the report
    print(f"[adaptive {time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptive", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two profiles, shorter runs: about 2 minutes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="constants",
        metavar="NAME=VALUE",
        help="a constant of airflow_iterate._core._adaptive (or INITIAL_AUTO_LIMIT) for this run",
    )
    parser.add_argument("--only", default=None, help="comma-separated parts: sweep,change,shared")
    parser.add_argument(
        "--cases",
        default=None,
        help="comma-separated profiles of the sweep, e.g. queue-8-20ms,refuse-64-20ms",
    )
    add_out_argument(parser)
    parser.add_argument(
        "--rerender", action="store_true", help="measure nothing: remake the report from adaptive.json"
    )
    args = parser.parse_args(argv)
    if args.out is None and (args.constants or args.only or args.cases):
        args.out = TRIAL_RESULTS
    args.out = output_directory(args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.rerender:
        from ._report import render

        print(render(args.out))
        return
    sizes = QUICK if args.quick else FULL
    if args.cases:
        wanted = set(args.cases.split(","))
        known = {case.key for case in sizes.cases}
        if wanted - known:
            raise SystemExit(
                f"unknown profiles: {', '.join(sorted(wanted - known))} (known: {', '.join(sorted(known))})"
            )
        sizes = dataclasses.replace(sizes, cases=tuple(c for c in sizes.cases if c.key in wanted))
    parts = set(args.only.split(",")) if args.only else {"sweep", "change", "shared"}
    machine = describe()  # before the benchmark's own load shows in the load average
    home = AirflowHome(max_map_length=1024)
    home.activate()  # airflow_iterate imports Airflow: never against the user's own AIRFLOW_HOME
    from ._chunk import ChunkProcesses  # imports no Airflow

    # Started first: they import Airflow while this process does.
    chunks = ChunkProcesses(args.constants) if "shared" in parts else None
    # Imported only now: airflow_iterate imports Airflow.
    from ._client import apply_constants, parse_constants
    from ._measure import capacity_change, shared_server, sweep
    from ._servers import Servers

    constants = parse_constants(args.constants)
    apply_constants(constants)
    servers = Servers()
    monitor = LoadMonitor()
    saved: dict[str, object] = {}
    try:
        rtts = {case.rtt_ms for case in (*sizes.cases, sizes.change, sizes.shared)}
        servers.start(rtts)
        monitor.start(servers.pids())
        _progress(f"server {servers.server.url}, RTTs {sorted(rtts)} ms; {len(sizes.cases)} profiles")
        if "sweep" in parts:
            saved["cases"] = [sweep(servers, case, _progress) for case in sizes.cases]
        if "change" in parts:
            saved["change"] = capacity_change(
                servers, sizes.change, sizes.change_seconds, sizes.change_at, _progress
            )
        if chunks is not None:
            saved["shared"] = shared_server(servers, chunks, sizes.shared, sizes.shared_runs, _progress)
    finally:
        if chunks is not None:
            chunks.close()
        load = monitor.stop()
        servers.close()
        home.remove()
    elapsed = time.perf_counter() - _STARTED
    command = "python -m benchmarks.adaptive" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    saved["machine"] = machine
    saved["run_info"] = {
        "Command": f"`{command.strip()}`",
        "Runtime": f"{elapsed / 60:.1f} min",
        "Server": "devtools.http_server (uvicorn, one process), GET /records/<id> (2-10 KB JSON)",
        "Client": f"httpx {_version('httpx')} (httpcore {_version('httpcore')}), one AsyncClient per run",
        "Constants changed": ", ".join(f"{k}={v:g}" for k, v in constants.items()) or "none",
    }
    saved["load"] = load
    saved["quick"] = args.quick
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULTS).write_text(json.dumps(saved, separators=(",", ":")))
    from ._report import render

    print(render(args.out))
    _progress(f"wrote {_shown(args.out / 'adaptive.md')} and adaptive.png in {elapsed / 60:.1f} min")


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    main()
