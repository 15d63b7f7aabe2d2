"""CPU time and memory of process trees: the sshd, a whole Airflow deployment, a row's subprocess.

A process's CPU time is its own user+sys plus that of the children it has reaped, which is
where short-lived processes (a task instance, an sshd session) end up. Counting that over the
trees at the start and at the end of a window, per process, gives the window's CPU time as long
as no process that was alive at the start dies during it; the trees measured here keep their
long-lived roots, and their short-lived processes start inside the window.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

RSS_SAMPLE_INTERVAL = 0.2


def _tree(root: int) -> list[psutil.Process]:
    try:
        process = psutil.Process(root)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def cpu_snapshot(roots: Sequence[int]) -> dict[tuple[int, float], float]:
    """CPU seconds (own plus reaped children's) of every process in the trees, by (pid, start time)."""
    found: dict[tuple[int, float], float] = {}
    for root in roots:
        for process in _tree(root):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                found[(process.pid, process.create_time())] = _cpu(process)
    return found


def cpu_between(before: dict[tuple[int, float], float], after: dict[tuple[int, float], float]) -> float:
    return sum(seconds - before.get(key, 0.0) for key, seconds in after.items())


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot (idle and I/O wait excluded)."""
    times = psutil.cpu_times()._asdict()
    # guest time is already part of user time on Linux
    busy = ("user", "nice", "system", "irq", "softirq", "steal")
    return float(sum(times.get(name, 0.0) for name in busy))


class RssSampler:
    """The largest sum of RSS over the trees, sampled in a thread (short-lived peaks may be missed)."""

    def __init__(self, roots: Callable[[], Sequence[int]]) -> None:
        self._roots = roots
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for root in self._roots():
                for process in _tree(root):
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                        total += process.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(RSS_SAMPLE_INTERVAL)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class ProcessUsage:
    """What the kernel accounted to one finished subprocess (and the children it reaped)."""

    returncode: int
    cpu_seconds: float
    peak_rss: int
    wall_seconds: float


class RowTimeout(RuntimeError):
    pass


def run_accounted(
    command: list[str], *, log_path: os.PathLike[str], env: dict[str, str], cwd: str, timeout: float
) -> ProcessUsage:
    """Run ``command`` to completion (killed after ``timeout`` s), output to ``log_path``.

    wait4() hands back the rusage of that one process, which a plain wait() would only add to
    this process's children total.
    """
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        killer.cancel()
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # so that Popen never waits for it again
    if wall >= timeout:
        raise RowTimeout(f"{' '.join(command)} was killed after {timeout:.0f} s; see {log_path}")
    return ProcessUsage(
        returncode=process.returncode,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,  # Linux reports KiB
        wall_seconds=wall,
    )
