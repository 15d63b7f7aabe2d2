"""``python -m benchmarks.sftp [--quick] [--rtt-ms MS] [--no-zero-rtt] [--only KEYS] [--out DIR]``.

Measures every row over a delayed link and again directly, then writes sftp.json, sftp.md and
sftp.png to the output directory (benchmarks/results by default).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from importlib.metadata import version

from benchmarks._output import add_out_argument, output_directory
from benchmarks._profiling import add_profile_arguments, check_profile_arguments
from benchmarks.overhead._env import AirflowHome
from benchmarks.overhead._machine import describe

from ._config import DEFAULT_RTT_MS, FULL, QUICK
from ._data import DIRECTORIES, SEED, generate
from ._results import Measurement
from ._rows import RowRunner, row_specs
from ._servers import Servers, sshd_version

_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    # stderr, so that stdout carries nothing but the report
    print(f"[sftp {time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def _client_versions() -> str:
    names = ("apache-airflow-providers-sftp", "apache-airflow-providers-ssh", "asyncssh", "paramiko")
    return ", ".join(f"{name} {version(name)}" for name in names)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sftp", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 files and small subsets: under 3 minutes")
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=DEFAULT_RTT_MS,
        help="round trip added by the delay proxy (default 20)",
    )
    parser.add_argument("--no-zero-rtt", action="store_true", help="skip the second table, without the proxy")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated row keys (e.g. raw,iterate_default): print, write nothing",
    )
    add_out_argument(parser)
    parser.add_argument("--keep-home", action="store_true", help="keep the AIRFLOW_HOME with every row's log")
    add_profile_arguments(parser)
    parser.add_argument(
        "--rerender", action="store_true", help="measure nothing: remake sftp.md and sftp.png from sftp.json"
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

    home = AirflowHome(max_map_length=sizes.files)
    home.activate()  # before anything imports Airflow, here or in a row's subprocess
    servers = Servers(args.rtt_ms, zero_rtt=not args.no_zero_rtt)
    rows: list[Measurement] = []
    try:
        home.migrate()
        servers.start()
        generating = time.perf_counter()
        data = generate(servers.data_dir / "xml", sizes.files)
        seconds = time.perf_counter() - generating
        _progress(f"{sizes.files:,} files, {data.total_bytes / 1e6:,.0f} MB in {seconds:.1f} s")
        runner = RowRunner(
            servers,
            data,
            home.log_dir,
            sizes.attempts,
            _progress,
            profile=args.profile_format if args.profile else None,
        )
        links = [(link.name, link.rtt_ms) for link in servers.links()]
        for link in servers.links():
            for spec in row_specs(sizes):
                if only is None or spec.key in only:
                    rows.append(runner.measure(spec, link))
        if only is None or "expand" in only:
            # Imported only now: the harness lives in the tests, which plain rows never need.
            from ._scheduler import measure_expand

            rows = measure_expand(servers, data.subset(sizes.expand), _progress) + rows
    finally:
        servers.stop()
        if args.keep_home:
            _progress(f"kept {home.path}")
        else:
            home.remove()
    elapsed = time.perf_counter() - started

    if only is not None:
        for row in rows:
            print(
                f"{row.key:<18} {row.link:<7} {row.files:>6,} files {row.wall:8.2f} s "
                f"{row.files_per_second:9.1f} files/s  cpu {row.cpu:6.2f} s  "
                f"sshd {row.sshd_cpu:5.2f} s  other {row.other_cpu:5.2f} s"
            )
        return

    from ._publish import render, save, snapshot

    command = "python -m benchmarks.sftp" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    run_info = {
        "Command": f"`{command.strip()}`",
        "Runtime": f"{elapsed / 60:.1f} min",
        "Data": f"{sizes.files:,} XML files of 2-40 KB ({data.total_bytes / 1e6:,.0f} MB) in "
        f"{DIRECTORIES} directories, seed {SEED}",
        "Server": f"{sshd_version()} sshd on 127.0.0.1 (internal-sftp), key authentication",
        "Clients": _client_versions(),
    }
    saved = snapshot(
        machine=machine, run_info=run_info, rtt_ms=args.rtt_ms, sizes=sizes, links=links, rows=rows
    )
    save(args.out, saved)
    print(render(args.out))
    _progress(f"wrote {args.out / 'sftp.md'} and {args.out / 'sftp.png'} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
