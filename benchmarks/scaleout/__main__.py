"""``python -m benchmarks.scaleout [--quick] [--rtt-ms MS] [--repeats N] [--out DIR]``.

Every variant runs ``--repeats`` times, in turns, on one deployment; the fastest run of each is
reported (the others are in scaleout.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from tests.celery._cluster import start_celery_deployment

from benchmarks._output import add_out_argument, output_directory
from benchmarks.overhead._machine import describe
from benchmarks.sftp._config import DEFAULT_RTT_MS, PROPOSAL_FILES
from benchmarks.sftp._data import MANIFEST, SEED, generate
from benchmarks.sftp._servers import Servers, sshd_version

from ._measure import VARIANTS, WORKERS, measure
from ._report import render

QUICK_FILES = 1_000
DAG_FILE = Path(__file__).with_name("_dag.py")

_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[scaleout {time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FILES:,} files, one run each")
    parser.add_argument("--rtt-ms", type=float, default=DEFAULT_RTT_MS, help="round trip added by the proxy")
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant (default 2; quick: 1)")
    add_out_argument(parser)
    parser.add_argument(
        "--rerender", action="store_true", help="measure nothing: remake the report from JSON"
    )
    args = parser.parse_args(argv)
    args.out = output_directory(args)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.rerender:
        print(render(args.out))
        return
    files = QUICK_FILES if args.quick else PROPOSAL_FILES
    machine = describe()
    started = time.perf_counter()
    servers = Servers(args.rtt_ms, zero_rtt=False)
    work = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-scaleout-"))
    deployment = None
    try:
        servers.start()
        data = generate(servers.data_dir / "xml", files)
        _progress(f"{files:,} files, {data.total_bytes / 1e6:,.0f} MB")
        (link,) = servers.links()
        source = work / "dags-source"
        source.mkdir()
        shutil.copy(DAG_FILE, source / "scaleout.py")
        settings = {"manifest": str(data.root / MANIFEST), "count": files, "conn_id": link.conn_id}
        (source / "settings.json").write_text(json.dumps(settings))
        home = work / "home"
        home.mkdir()
        _progress(
            f"starting Redis, api-server, scheduler, dag-processor and {len(WORKERS)} workers in {home}"
        )
        deployment = start_celery_deployment(
            home,
            source,
            list(VARIANTS),
            WORKERS,
            extra_env={
                **servers.environment(),
                # Parsing every 5 s (the test harness's setting) would only add CPU time to the runs.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "300",
            },
        )
        runs = measure(deployment, servers, data, args.repeats, _progress)
    finally:
        if deployment is not None:
            deployment.stop()
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    saved = {
        "machine": machine,
        "run_info": {
            "Command": "`python -m benchmarks.scaleout"
            + "".join(f" {a}" for a in (argv or sys.argv[1:]))
            + "`",
            "Runtime": f"{elapsed / 60:.1f} min",
            "Data": f"{files:,} XML files of 2-40 KB ({data.total_bytes / 1e6:,.0f} MB), seed {SEED}",
            "Link": f"{args.rtt_ms:g} ms RTT through the delay proxy to {sshd_version()} sshd on 127.0.0.1",
            "Deployment": "CeleryExecutor, Redis "
            f"(redis-server on 127.0.0.1), celery provider {version('apache-airflow-providers-celery')}, "
            f"{len(WORKERS)} workers with one slot each, api-server + scheduler + dag-processor, SQLite",
        },
        "files": files,
        "bytes": data.total_bytes,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaleout.json").write_text(json.dumps(saved, indent=1))
    print(render(args.out))
    _progress(f"wrote {args.out / 'scaleout.md'} and {args.out / 'scaleout.png'} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
