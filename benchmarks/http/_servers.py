"""The HTTP API every row calls, and the links to it: through the delay proxy, and direct.

The server is the project's test server (``devtools.http_server``: uvicorn in a process of its
own on 127.0.0.1) with request recording off. The proxy runs as a thread of the orchestrating
process, never inside a measured client, so it neither shares a client's GIL nor shows in its
CPU time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer, record_bytes

__all__ = ["Link", "Servers", "detail_endpoint", "expected_bytes", "record_bytes", "server_version"]

#: seconds the server keeps an idle connection (nginx's default is 75; uvicorn's 5 would close
#: pooled connections that a slow client leaves idle, and a request racing that close fails)
KEEP_ALIVE = 75.0


def detail_endpoint(record_id: int) -> str:
    """The detail GET of call ``record_id`` (1-based), relative to the connection's base URL."""
    return f"records/{record_id}"


def expected_bytes(count: int) -> int:
    """The bodies' total size for calls 1..count, computed as the server computes them."""
    return sum(len(record_bytes(i)) for i in range(1, count + 1))


def server_version() -> str:
    try:
        return f"uvicorn {version('uvicorn')}"
    except PackageNotFoundError:
        return "uvicorn"


@dataclass(frozen=True)
class Link:
    """One way to reach the server, as an Airflow connection."""

    name: str
    rtt_ms: float
    host: str
    port: int
    conn_id: str

    @property
    def env_name(self) -> str:
        return f"AIRFLOW_CONN_{self.conn_id.upper()}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env_value(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.host, "port": self.port, "schema": "http"})


class Servers:
    """The API server on 127.0.0.1 and, for a non-zero RTT, a delay proxy in front of it."""

    def __init__(self, records: int, rtt_ms: float, *, zero_rtt: bool) -> None:
        # Recording every request would cost the server memory and CPU the clients never caused.
        self.api = HTTPTestServer(records=records, record_requests=False, keep_alive_timeout=KEEP_ALIVE)
        self.rtt_ms = rtt_ms
        self.zero_rtt = zero_rtt
        self.proxy: DelayProxy | None = None

    def start(self) -> None:
        self.api.start()
        if self.rtt_ms > 0:
            # Half the round trip each way.
            self.proxy = DelayProxy(self.api.host, self.api.port, delay=self.rtt_ms / 2000).start()

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        self.api.close()

    def links(self) -> list[Link]:
        found = []
        if self.proxy is not None:
            rtt = f"{self.rtt_ms:g}".replace(".", "_")
            found.append(Link("proxy", self.rtt_ms, self.proxy.host, self.proxy.port, f"http_bench_{rtt}ms"))
        if self.zero_rtt or self.proxy is None:
            found.append(Link("direct", 0.0, self.api.host, self.api.port, "http_bench_direct"))
        return found

    def environment(self) -> dict[str, str]:
        return {link.env_name: link.env_value() for link in self.links()}

    def server_pid(self) -> int:
        pid = self.api.pid
        if pid is None:
            raise RuntimeError("the HTTP test server is not running")
        return pid
