"""The SFTP server every row reads from, and the links to it: through the delay proxy and direct.

The proxy runs as a thread of the orchestrating process, never inside a measured client, so it
neither shares a client's GIL nor shows in its CPU time.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.delay_proxy import DelayProxy
from devtools.sshd import SSHD, SSHServer, current_user, make_server_directory, remove_server_directory

#: how long the sshd processes of closed connections may take to exit before a row's server CPU
#: is read (their time reaches the listener's account only once it has reaped them)
SESSIONS_GONE_TIMEOUT = 10.0


def sshd_version() -> str:
    """Like ``OpenSSH_9.2, OpenSSL 3.0.19 ...``, which ``sshd -V`` prints on stderr."""
    try:
        found = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (found.stderr or found.stdout).strip().splitlines()
    return lines[0] if lines else "unknown"


@dataclass(frozen=True)
class Link:
    """One way to reach the server, as an Airflow connection."""

    name: str
    rtt_ms: float
    host: str
    port: int
    conn_id: str
    extra: dict[str, str]

    @property
    def env_name(self) -> str:
        return f"AIRFLOW_CONN_{self.conn_id.upper()}"

    def env_value(self) -> str:
        return json.dumps(
            {
                "conn_type": "sftp",
                "host": self.host,
                "port": self.port,
                "login": current_user(),
                "extra": self.extra,
            }
        )


class Servers:
    """A real OpenSSH sshd on 127.0.0.1 and, for a non-zero RTT, a delay proxy in front of it."""

    def __init__(self, rtt_ms: float, *, zero_rtt: bool) -> None:
        self.directory = make_server_directory()
        self.sshd = SSHServer(self.directory)
        self.rtt_ms = rtt_ms
        self.zero_rtt = zero_rtt
        self.proxy: DelayProxy | None = None

    @property
    def data_dir(self) -> Path:
        return self.sshd.data_dir

    def start(self) -> None:
        self.sshd.start()
        if self.rtt_ms > 0:
            # Half the round trip each way.
            self.proxy = DelayProxy(self.sshd.host, self.sshd.port, delay=self.rtt_ms / 2000).start()

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        self.sshd.stop()
        remove_server_directory(self.directory)

    def links(self) -> list[Link]:
        extra = self.sshd.connection_extra()
        found = []
        if self.proxy is not None:
            rtt = f"{self.rtt_ms:g}".replace(".", "_")
            found.append(
                Link("proxy", self.rtt_ms, self.proxy.host, self.proxy.port, f"sftp_bench_{rtt}ms", extra)
            )
        if self.zero_rtt or self.proxy is None:
            found.append(Link("direct", 0.0, self.sshd.host, self.sshd.port, "sftp_bench_direct", extra))
        return found

    def environment(self) -> dict[str, str]:
        return {link.env_name: link.env_value() for link in self.links()}

    def listener_pid(self) -> int:
        process = self.sshd._process
        if process is None:
            raise RuntimeError("sshd is not running")
        return process.pid

    def wait_sessions_gone(self) -> bool:
        """Whether every per-connection sshd process exited (and was reaped) in time."""
        deadline = time.monotonic() + SESSIONS_GONE_TIMEOUT
        while time.monotonic() < deadline:
            if not self.sshd.session_pids():
                return True
            time.sleep(0.05)
        return False
