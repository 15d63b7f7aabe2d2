"""``python -m benchmarks [--quick]``: every benchmark ``make bench`` runs, each in its own interpreter.

Each one points Airflow at a throwaway AIRFLOW_HOME before importing it, which can happen only
once per process. ``--quick`` writes to ``.bench/quick``, never over the published results.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

#: per-item overhead, the metadata-DB load, the proposal's SFTP table, the same job chunked over
#: Celery workers, the Items tab's endpoints on a task of 1,000,000 items, the HTTP table with the
#: metadata DB's load, then concurrency="auto" against an HTTP server with a capacity
BENCHMARKS = (
    "benchmarks.overhead",
    "benchmarks.dbload",
    "benchmarks.sftp",
    "benchmarks.scaleout",
    "benchmarks.itemstab",
    "benchmarks.http",
    "benchmarks.adaptive",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, every benchmark in minutes")
    args = parser.parse_args(argv)
    for module in BENCHMARKS:
        subprocess.run([sys.executable, "-m", module, *(["--quick"] if args.quick else [])], check=True)


if __name__ == "__main__":
    main()
