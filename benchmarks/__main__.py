"""``python -m benchmarks [--quick]``: every benchmark, each in its own interpreter.

Each one points Airflow at a throwaway AIRFLOW_HOME before importing it, which can happen only
once per process.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("benchmarks.overhead", "benchmarks.sftp")


def main() -> None:
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    for module in BENCHMARKS:
        subprocess.run([sys.executable, "-m", module, *quick], check=True)


if __name__ == "__main__":
    main()
