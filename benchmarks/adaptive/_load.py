"""The machine's load while the benchmark runs: it shares 2 cores with whatever else is running."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psutil

INTERVAL = 2.0


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


class LoadMonitor:
    """Samples the 1-minute load average; the machine's busy CPU share and this benchmark's own
    CPU (its processes and their children: server, proxies, chunks) over the whole run."""

    def __init__(self, extra_pids: list[int] | None = None) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="load-monitor", daemon=True)
        self.samples: list[float] = []
        self._extra_pids = extra_pids or []
        self._own_cpu_start = 0.0
        self._ticks_start = (0, 0)
        self._t0 = 0.0
        self.summary: dict[str, Any] = {}

    def start(self, extra_pids: list[int]) -> None:
        self._extra_pids = extra_pids
        self._t0 = time.monotonic()
        self._ticks_start = _cpu_ticks()
        self._own_cpu_start = self._own_cpu()
        self._thread.start()

    def _own_cpu(self) -> float:
        me = psutil.Process()
        times = me.cpu_times()
        total = float(times.user + times.system + times.children_user + times.children_system)
        for pid in self._extra_pids:
            try:
                other = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += other.user + other.system
        return total

    def _sample(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict[str, Any]:
        own = self._own_cpu() - self._own_cpu_start
        busy, total = _cpu_ticks()
        self._stop.set()
        self._thread.join(5)
        seconds = time.monotonic() - self._t0
        cores = psutil.cpu_count() or 1
        machine_busy = (busy - self._ticks_start[0]) / max(1, total - self._ticks_start[1])
        samples = self.samples or [os.getloadavg()[0]]
        self.summary = {
            "seconds": round(seconds, 1),
            "load_min": round(min(samples), 2),
            "load_mean": round(sum(samples) / len(samples), 2),
            "load_max": round(max(samples), 2),
            "machine_busy": round(machine_busy, 3),
            "own_cpu_seconds": round(own, 1),
            "own_share_of_machine": round(own / (seconds * cores), 3),
            "cores": cores,
        }
        return self.summary
