"""``python -m benchmarks.overhead [--quick] [--out DIR]``: measure, print and save the report."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from benchmarks._output import add_out_argument, output_directory

from ._config import FULL, QUICK
from ._env import AirflowHome, run_module_json
from ._machine import describe


def _progress(message: str) -> None:
    # stderr, so that stdout carries nothing but the report
    print(f"[overhead] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes; finishes in under a minute")
    add_out_argument(parser)
    parser.add_argument(
        "--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME and its logs"
    )
    args = parser.parse_args(argv)
    args.out = output_directory(args)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine = describe()  # before the benchmark's own load shows in the load average

    home = AirflowHome(max_map_length=sizes.expand_tis)
    # Before anything imports Airflow: its configuration is read once, at import.
    home.activate()
    try:
        _progress(f"metadata DB in {home.path}")
        home.migrate()

        # First, while this process is still small: on Linux a child's ru_maxrss starts at the
        # peak of the process that spawned it.
        memory = []
        for engine in ("runner", "gather"):
            _progress(f"memory: {engine}, {sizes.memory_items:,} items")
            memory.append(
                run_module_json(
                    "benchmarks.overhead._memory",
                    [engine, str(sizes.memory_items)],
                    home.log_dir / f"memory-{engine}.log",
                )
            )

        # airflow_iterate imports Airflow, so the in-process cases are imported only now.
        from ._micro import measure

        _progress(f"floors, core and Airflow layer, {sizes.repeats} repeats")
        timings = measure(sizes)

        _progress(f"dag.test(): .iterate() x{sizes.dag_repeats}, .expand() to {sizes.expand_tis} TIs")
        dagrun_log = home.log_dir / "dagrun.log"
        dagrun = run_module_json(
            "benchmarks.overhead._dagrun",
            [
                f"--async-items={sizes.async_items}",
                f"--sync-items={sizes.sync_items}",
                f"--expand-tis={sizes.expand_tis}",
                f"--repeats={sizes.dag_repeats}",
                f"--expand-repeats={sizes.expand_repeats}",
                f"--dags-folder={home.dags}",
            ],
            dagrun_log,
        )
        from ._results import dagrun_rows, logged_iterate_seconds, micro_rows, ratios

        logged = logged_iterate_seconds(dagrun_log)
    finally:
        if args.keep_home:
            _progress(f"kept {home.path}")
        else:
            home.remove()

    from ._report import chart, markdown

    rows = micro_rows(timings) + dagrun_rows(dagrun)
    elapsed = time.perf_counter() - started
    command = "python -m benchmarks.overhead" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    report = markdown(
        machine=machine,
        run_info={"Command": f"`{command.strip()}`", "Runtime": f"{elapsed:.0f} s"},
        rows=rows,
        found_ratios=ratios(rows),
        memory=memory,
        dagrun=dagrun,
        logged=logged,
        repeats=sizes.repeats,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.md").write_text(report)
    chart(
        rows,
        args.out / "overhead.png",
        f"Per-item overhead of no-op items — {machine['CPU']}, {machine['Date']}",
    )
    print(report)
    _progress(f"wrote {args.out / 'overhead.md'} and {args.out / 'overhead.png'} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
