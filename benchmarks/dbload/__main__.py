"""``python -m benchmarks.dbload [--quick] [--out DIR]``: measure, print and save the report."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from benchmarks._output import add_out_argument, output_directory
from benchmarks.overhead._env import AirflowHome, run_module_json
from benchmarks.overhead._machine import describe

from ._config import FULL, QUICK


def _progress(message: str) -> None:
    # stderr, so that stdout carries nothing but the report
    print(f"[dbload] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dbload", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10x smaller; about a minute")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs of cases (a) to (c), in turns (default 3; quick: 2)"
    )
    add_out_argument(parser)
    parser.add_argument(
        "--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME and its logs"
    )
    args = parser.parse_args(argv)
    args.out = output_directory(args)
    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or (2 if args.quick else 3)
    started = time.perf_counter()
    machine = describe()  # before the benchmark's own load shows in the load average

    home = AirflowHome(max_map_length=sizes.expand_items)
    # Before anything imports Airflow: its configuration is read once, at import.
    home.activate()
    try:
        _progress(f"metadata DB (SQLite) in {home.path}")
        home.migrate()
        _progress(
            f"dag.test(): .iterate() over {sizes.items:,} items x{repeats} (ledger, no ledger, neither), "
            f"{sizes.slow_items:,} items of {sizes.slow_sleep * 1e3:g} ms, .expand() over "
            f"{sizes.expand_items:,} items"
        )
        data = run_module_json(
            "benchmarks.dbload._runs",
            [
                f"--items={sizes.items}",
                f"--slow-items={sizes.slow_items}",
                f"--slow-sleep={sizes.slow_sleep}",
                f"--slow-concurrency={sizes.slow_concurrency}",
                f"--expand-items={sizes.expand_items}",
                f"--repeats={repeats}",
                f"--dags-folder={home.dags}",
            ],
            home.log_dir / "runs.log",
        )
    finally:
        if args.keep_home:
            _progress(f"kept {home.path}")
        else:
            home.remove()

    # matplotlib and the summaries need no Airflow; imported only now, as the other benchmarks do.
    from ._report import chart, markdown
    from ._results import summarize

    summaries = summarize(data)
    elapsed = time.perf_counter() - started
    command = "python -m benchmarks.dbload" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    report = markdown(
        machine=machine,
        run_info={
            "Command": f"`{command.strip()}`",
            "Runtime": f"{elapsed:.0f} s",
            "Metadata DB": "SQLite (a fresh AIRFLOW_HOME)",
        },
        summaries=summaries,
        defaults=data["defaults"],
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dbload.md").write_text(report)
    chart(
        summaries,
        args.out / "dbload.png",
        f"Metadata-DB writes of one DAG run — {machine['CPU']}, {machine['Date']}",
    )
    print(report)
    _progress(f"wrote {args.out / 'dbload.md'} and {args.out / 'dbload.png'} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
