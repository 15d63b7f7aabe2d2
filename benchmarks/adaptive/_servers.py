"""The HTTP server under test and, for a non-zero RTT, the delay proxy in front of it.

Each runs in a process of its own (the proxy through ``python -m benchmarks.adaptive._servers``),
so neither shares the measured client's interpreter lock nor shows in its CPU time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import psutil
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer

from ._config import Case

#: records the server holds; the items cycle through them
RECORDS = 1000
DRAIN_TIMEOUT = 30.0


class ProxyProcess:
    """``DelayProxy`` in a child process; half the round trip each way."""

    def __init__(self, host: str, port: int, rtt_ms: float) -> None:
        self.rtt_ms = rtt_ms
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.adaptive._servers", host, str(port), str(rtt_ms / 2000)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the delay proxy did not start: {line!r}")
        self.host = "127.0.0.1"
        self.port = int(line)

    @property
    def pid(self) -> int:
        return self._process.pid

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()  # the child exits when its stdin closes
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


class Servers:
    """One server for the whole benchmark, reconfigured for each case; a proxy per RTT."""

    def __init__(self) -> None:
        # Requests are not recorded one by one: the responses are counted by the client.
        # Idle connections stay open longer than any run, as the client's pools keep them.
        self.server = HTTPTestServer(records=RECORDS, record_requests=False, keep_alive_timeout=300.0)
        self._proxies: dict[float, ProxyProcess] = {}

    def start(self, rtts: set[float]) -> None:
        self.server.start()
        for rtt in sorted(rtts):
            if rtt > 0:
                self._proxies[rtt] = ProxyProcess(self.server.host, self.server.port, rtt)

    def close(self) -> None:
        for proxy in self._proxies.values():
            proxy.close()
        self.server.close()

    def url(self, rtt_ms: float) -> str:
        if rtt_ms <= 0:
            return self.server.url
        proxy = self._proxies[rtt_ms]
        return f"http://{proxy.host}:{proxy.port}"

    def prepare(self, case: Case) -> None:
        """Wait until nothing of the last run is in flight, then set the case's profile."""
        self.drain()
        self.server.configure(**case.server_settings())

    def drain(self) -> None:
        self.server.wait_until(
            lambda stats: stats.in_flight == 0, "no request in flight", timeout=DRAIN_TIMEOUT
        )

    def pids(self) -> list[int]:
        found = [self.server.pid] + [proxy.pid for proxy in self._proxies.values()]
        return [pid for pid in found if pid is not None]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total


def _serve_proxy(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a delay proxy until stdin closes (internal)")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("delay", type=float, help="one-way delay, seconds")
    args = parser.parse_args(argv)
    with DelayProxy(args.host, args.port, delay=args.delay) as proxy:
        print(proxy.port, flush=True)
        sys.stdin.read()  # until the parent closes it (or exits)


if __name__ == "__main__":
    _serve_proxy()
