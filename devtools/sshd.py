"""A real OpenSSH ``sshd`` for the SFTP tests, run in the foreground as a child of the test process.

Everything it needs lives in one directory: the config, an ed25519 host key, a client key pair and
its ``authorized_keys``, the log and the data directory it serves. It listens on 127.0.0.1 only.
Stopping it also kills the per-connection processes: sshd forks one per connection and each of
them calls ``setsid()``, so they escape the listener's process group and would otherwise keep
serving open connections across a "restart".
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncssh
import psutil

LOOPBACK = "127.0.0.1"
SSHD = Path("/usr/sbin/sshd")
#: OpenSSH's privilege-separation directory; sshd refuses to start without it
PRIVSEP_DIR = Path("/run/sshd")
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.02
#: an unprivileged account that sshd lets in with the test key (used where the OS must enforce
#: file permissions, which it does not for root)
UNPRIVILEGED_USER = "nobody"

MISSING_SSHD = (
    f"{SSHD} not found: the SFTP tests run a real OpenSSH server. Install it with "
    "`make system-packages` (Debian package openssh-server)."
)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _make_keypair(private_path: Path) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(private_path))
    private_path.chmod(0o600)
    key.write_public_key(str(private_path) + ".pub")
    return key


class SSHServer:
    """One sshd configuration; :meth:`start` / :meth:`stop` / :meth:`restart` keep the same port.

    ``directory`` becomes world-traversable so that sshd, reading ``authorized_keys`` as the
    logging-in user, also works for :data:`UNPRIVILEGED_USER`.
    """

    def __init__(self, directory: Path, *, port: int | None = None, max_startups: str = "100:30:200") -> None:
        if not SSHD.is_file():
            raise RuntimeError(MISSING_SSHD)
        self.directory = directory
        self.port = port or free_loopback_port()
        #: OpenSSH's MaxStartups (start:rate:full): unauthenticated connections beyond ``start``
        #: are dropped at random, all beyond ``full``
        self.max_startups = max_startups
        self.host = LOOPBACK
        self.data_dir = directory / "data"
        self.log_path = directory / "sshd.log"
        self.config_path = directory / "sshd_config"
        self.host_key_path = directory / "ssh_host_ed25519_key"
        self.client_key_path = directory / "id_ed25519"
        self.authorized_keys_path = directory / "authorized_keys"
        self._process: subprocess.Popen[bytes] | None = None

        directory.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        for path in (directory, self.data_dir):
            path.chmod(0o755)
        self.host_key = _make_keypair(self.host_key_path)
        self.client_key = _make_keypair(self.client_key_path)
        self.authorized_keys_path.write_bytes(self.client_key.export_public_key())
        self.authorized_keys_path.chmod(0o644)
        self.config_path.write_text(self._config())

    # -- what clients need ----------------------------------------------------------------------

    @property
    def host_public_key(self) -> str:
        """The host key as a connection's ``host_key`` extra expects it: ``<type> <base64>``."""
        return self.host_key.export_public_key().decode().strip()

    @property
    def client_private_key(self) -> str:
        return self.client_key.export_private_key().decode()

    def connection_extra(self) -> dict[str, str]:
        return {"private_key": self.client_private_key, "host_key": self.host_public_key}

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the listener and every connection it serves; clients see their connections drop."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            sessions = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            sessions = []
        # The listener first, so that it cannot accept (and fork) while its children are killed.
        for victim in [process.pid, *(child.pid for child in sessions)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        _wait_dead(sessions)

    def restart(self) -> None:
        self.stop()
        self.start()

    def session_pids(self) -> list[int]:
        if self._process is None:
            return []
        try:
            return [child.pid for child in psutil.Process(self._process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ------------------------------------------------------------------------------

    def _config(self) -> str:
        sftp = f"internal-sftp -d {self.data_dir}"
        return "\n".join(
            [
                f"Port {self.port}",
                f"ListenAddress {LOOPBACK}",
                f"HostKey {self.host_key_path}",
                "PidFile none",
                f"AuthorizedKeysFile {self.authorized_keys_path}",
                # pytest's temporary directories are not what StrictModes demands of a home
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "PrintMotd no",
                "UseDNS no",
                "MaxSessions 256",
                f"MaxStartups {self.max_startups}",
                "LogLevel INFO",
                f"Subsystem sftp {sftp}",
                # The unprivileged account has no usable shell or home: SFTP only.
                f"Match User {UNPRIVILEGED_USER}",
                f"    ForceCommand {sftp}",
                "",
            ]
        )

    def _wait_ready(self) -> None:
        """Poll until the server answers with its SSH banner (or fail with its log)."""
        deadline = time.monotonic() + READY_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"sshd exited with status {self._process.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError as exc:
                last_error = exc
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(
            f"sshd did not accept connections on {self.host}:{self.port} within {READY_TIMEOUT:g}s "
            f"(last error: {last_error}):\n{self.log_tail()}"
        )


def _wait_dead(processes: list[psutil.Process]) -> None:
    """Until every process is gone or a zombie (they are not our children: someone else reaps them)."""
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        while time.monotonic() < deadline:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(POLL_INTERVAL)
        else:
            raise RuntimeError(f"sshd session process {process.pid} survived SIGKILL for {STOP_TIMEOUT:g}s")


def make_server_directory() -> Path:
    """A fresh directory for a server, outside pytest's private (0700) temporary tree.

    :data:`UNPRIVILEGED_USER` must be able to traverse to ``authorized_keys`` and the data directory.
    """
    return Path(tempfile.mkdtemp(prefix="airflow-iterate-sshd-"))


def remove_server_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
