"""The two processes of the shared-server case: the parent's side and the child's.

A child, ``python -m benchmarks.adaptive._chunk [--set NAME=VALUE ...]``, runs as a chunk task
instance would: in a process of its own. It imports, prints ``ready``, then for each line
``START SECONDS URL`` on stdin (START on the monotonic clock, which every process of the machine
shares) runs ``"auto"`` against URL for SECONDS from START and prints its RunRecord as JSON, until
stdin closes. The parent's environment (AIRFLOW_HOME) is inherited.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any


class ChunkProcesses:
    """The two processes of the shared-server case, started early: each imports Airflow (through
    airflow_iterate) for several seconds, better done while the parent does the same."""

    def __init__(self, constants: list[str]) -> None:
        command = [sys.executable, "-m", "benchmarks.adaptive._chunk"]
        command += [f"--set={pair}" for pair in constants]
        self.children = [
            subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
            )
            for _ in range(2)
        ]
        self._ready = False

    def run(self, url: str, start: float, seconds: float, stagger: float) -> list[dict[str, Any]]:
        """The first runs from ``start`` for ``seconds``, the second from ``stagger`` s later to the
        same end."""
        if not self._ready:
            for child in self.children:
                _expect(child, "ready")
            self._ready = True
        plans = [(start, seconds), (start + stagger, seconds - stagger)]
        for child, (at, length) in zip(self.children, plans, strict=True):
            assert child.stdin is not None
            child.stdin.write(f"{at} {length} {url}\n")
            child.stdin.flush()
        return [json.loads(_expect(child, None)) for child in self.children]

    def close(self) -> None:
        for child in self.children:
            if child.stdin is not None:
                child.stdin.close()
        for child in self.children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)


def _expect(child: subprocess.Popen[str], wanted: str | None) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line or (wanted is not None and line != wanted):
        raise RuntimeError(f"a chunk process answered {line!r} (exit status {child.poll()})")
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptive._chunk", description=__doc__)
    parser.add_argument("--set", action="append", default=[], dest="constants")
    args = parser.parse_args(argv)
    from ._client import apply_constants, parse_constants, run  # imports Airflow

    apply_constants(parse_constants(args.constants))
    print("ready", flush=True)
    for line in sys.stdin:
        start_at, seconds, url = line.split()
        record = run(url, "auto", float(seconds), start_at=float(start_at))
        print(json.dumps(record.as_json()), flush=True)


if __name__ == "__main__":
    main()
