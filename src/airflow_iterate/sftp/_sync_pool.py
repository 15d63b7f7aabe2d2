"""SyncSFTPPool: one paramiko SFTP client per thread, for sync ``.iterate()`` items.

Sync items run on a pool of threads, and a paramiko ``SFTPClient`` must not be used by two threads
at once. So each thread gets its own connection, opened on its first use and reused by every
later item on that thread; the pool closes them all at the end. With ``concurrency`` threads that
is at most ``concurrency`` connections, opened one per thread as the threads start (not all at
once, which keeps clear of the server's ``MaxStartups``).

The connection is read and checked exactly as for :class:`~airflow_iterate.sftp.SFTPPool` (the same
extras, host key checking on unless the connection turns it off, the same error messages).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import asyncssh
import paramiko  # type: ignore[import-untyped]

from ._error_map import FailureKind, failure
from ._errors import SFTPConnectError, SFTPPoolClosedError, SFTPPoolUsageError
from ._settings import ConnectionSettings, read_settings, settings_from_connection

__all__ = ["SyncPoolStatistics", "SyncSFTPPool"]

log = logging.getLogger("airflow_iterate.sftp")

HEALTH_CHECK_TIMEOUT = 10.0
_PARAMIKO_KEY_TYPES: tuple[Any, ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


@dataclass(frozen=True)
class SyncPoolStatistics:
    """A snapshot of a :class:`SyncSFTPPool`."""

    conn_id: str
    #: connections open now (one per thread that used the pool)
    connections: int
    #: threads inside ``pool.client()`` now
    in_use: int
    opened: int
    #: checkouts served by a thread's existing connection
    reused: int
    #: connections dropped as broken (transport error, failed health check)
    discarded: int
    health_checks: int


class _ThreadClient:
    __slots__ = ("closed", "depth", "opened_at", "sftp", "ssh", "thread", "verified_at")

    def __init__(self, ssh: Any, sftp: Any) -> None:
        self.ssh = ssh
        self.sftp = sftp
        self.thread = threading.current_thread()
        self.depth = 0
        self.opened_at = self.verified_at = time.monotonic()
        self.closed = False

    def alive(self) -> bool:
        transport = self.ssh.get_transport()
        return not self.closed and transport is not None and transport.is_active()

    def close(self) -> None:
        self.closed = True
        for closeable in (self.sftp, self.ssh):
            try:
                closeable.close()
            except Exception:  # already broken: nothing more to release
                log.debug("error closing an SFTP connection", exc_info=True)


class _RecordingRejectPolicy(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Rejects unknown host keys like paramiko's RejectPolicy, keeping the key for the message."""

    def __init__(self) -> None:
        self.presented: Any = None

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        self.presented = key
        raise paramiko.SSHException(f"host key for {hostname} is not known")


class SyncSFTPPool:
    """Thread-safe pool of paramiko ``SFTPClient``: one per thread, reused, all closed at the end.

    ::

        with SyncSFTPPool("my_sftp") as pool:
            # in any number of threads:
            with pool.client() as sftp:  # paramiko.SFTPClient, this thread's own
                sftp.get("/in/a.xml", "/tmp/a.xml")

    :param conn_id: the Airflow connection, read once (by the first thread that needs it).
    :param connection: an already fetched Airflow ``Connection`` to use instead.
    :param health_check_after: a connection idle this long answers one SFTP round trip before it
        is used again; a broken one is replaced transparently.
    :param health_check_timeout: seconds that round trip may take.
    :param max_lifetime: replace a thread's connection this many seconds after it opened.
    :param no_host_key_check: overrides the connection's ``no_host_key_check`` extra.
    """

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        connection: Any = None,
        health_check_after: float = 10.0,
        health_check_timeout: float = HEALTH_CHECK_TIMEOUT,
        max_lifetime: float | None = 3600.0,
        no_host_key_check: bool | None = None,
    ) -> None:
        if conn_id is None and connection is None:
            conn_id = "sftp_default"
        self.conn_id: str = conn_id or str(getattr(connection, "conn_id", None) or "<connection object>")
        self._connection_object = connection
        if health_check_after < 0 or (max_lifetime is not None and max_lifetime <= 0):
            raise SFTPPoolUsageError("health_check_after must be >= 0 and max_lifetime > 0 (or None)")
        self.health_check_after = health_check_after
        self.health_check_timeout = health_check_timeout
        self.max_lifetime = max_lifetime
        self._no_host_key_check = no_host_key_check
        self._local = threading.local()
        self._lock = threading.Lock()
        self._settings_lock = threading.Lock()
        self._settings: ConnectionSettings | None = None
        self._pkey: Any = None
        self._clients: list[_ThreadClient] = []
        self._closed = False
        self._in_use = 0
        self._opened = 0
        self._reused = 0
        self._discarded = 0
        self._health_checks = 0

    # -- public ---------------------------------------------------------------------------------

    @contextmanager
    def client(self) -> Iterator[Any]:
        """This thread's ``paramiko.SFTPClient`` for a ``with`` block (opened on first use).

        Nested blocks in one thread get the same client. A block leaving with the connection
        broken drops it; the thread's next block opens a new one.
        """
        holder = self._checkout()
        with self._lock:
            self._in_use += 1
        holder.depth += 1
        failed = False
        try:
            yield holder.sftp
        except Exception as exc:
            failed = True
            # paramiko reports a dead link and some server answers with the same exception types
            # (EOFError, a bare OSError); only "no such file" and "permission denied" are surely
            # answers. For anything else the connection has to prove it still works.
            if not _is_status_error(exc) and (not holder.alive() or not self._probe(holder)):
                self._drop(holder, f"{type(exc).__name__}: {exc}")
            raise
        except BaseException:
            failed = True
            raise
        finally:
            holder.depth -= 1
            with self._lock:
                self._in_use -= 1
            if not failed and not holder.closed:
                holder.verified_at = time.monotonic()

    def close(self) -> None:
        """Close every thread's connection; later ``client()`` calls fail. Idempotent."""
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, []
        for holder in clients:
            holder.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> SyncPoolStatistics:
        with self._lock:
            return SyncPoolStatistics(
                conn_id=self.conn_id,
                connections=len(self._clients),
                in_use=self._in_use,
                opened=self._opened,
                reused=self._reused,
                discarded=self._discarded,
                health_checks=self._health_checks,
            )

    def __enter__(self) -> SyncSFTPPool:
        if self._closed:
            raise SFTPPoolClosedError(f"the SyncSFTPPool for {self.conn_id!r} is closed")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<SyncSFTPPool {self.conn_id!r}: {s.connections} connection(s), {s.in_use} in use>"

    # -- internals ------------------------------------------------------------------------------

    def _checkout(self) -> _ThreadClient:
        if self._closed:
            raise SFTPPoolClosedError(f"the SyncSFTPPool for {self.conn_id!r} is closed")
        self._close_for_finished_threads()
        holder: _ThreadClient | None = getattr(self._local, "holder", None)
        if holder is not None and holder.depth == 0:
            age = time.monotonic() - holder.opened_at
            too_old = self.max_lifetime is not None and age >= self.max_lifetime
            stale = time.monotonic() - holder.verified_at >= self.health_check_after
            if too_old or not holder.alive() or (stale and not self._probe(holder)):
                self._drop(holder, "expired" if too_old else "failed its health check", count=not too_old)
                holder = None
        if holder is None or holder.closed:
            holder = self._open()
            self._local.holder = holder
        else:
            with self._lock:
                self._reused += 1
        return holder

    def _probe(self, holder: _ThreadClient) -> bool:
        """One SFTP round trip, bounded by ``health_check_timeout``."""
        with self._lock:
            self._health_checks += 1
        channel = holder.sftp.get_channel()
        previous = channel.gettimeout()
        try:
            channel.settimeout(self.health_check_timeout)
            holder.sftp.normalize(".")
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                channel.settimeout(previous)
        holder.verified_at = time.monotonic()
        return True

    def _drop(self, holder: _ThreadClient, reason: str, *, count: bool = True) -> None:
        if holder.closed:
            return
        log.info("SyncSFTPPool(%r): dropping %s's connection: %s", self.conn_id, holder.thread.name, reason)
        with self._lock:
            if count:
                self._discarded += 1
            if holder in self._clients:
                self._clients.remove(holder)
        holder.close()
        if getattr(self._local, "holder", None) is holder:
            self._local.holder = None

    def _close_for_finished_threads(self) -> None:
        with self._lock:
            finished = [h for h in self._clients if not h.thread.is_alive()]
            for holder in finished:
                self._clients.remove(holder)
        for holder in finished:
            holder.close()

    def _get_settings(self) -> ConnectionSettings:
        with self._settings_lock:
            if self._settings is None:
                if self._connection_object is not None:
                    settings = settings_from_connection(
                        self._connection_object, no_host_key_check=self._no_host_key_check
                    )
                else:
                    settings = read_settings(self.conn_id, no_host_key_check=self._no_host_key_check)
                self._pkey = _paramiko_private_key(settings)
                self._settings = settings
            return self._settings

    def _open(self) -> _ThreadClient:
        settings = self._get_settings()
        ssh = paramiko.SSHClient()
        policy = _RecordingRejectPolicy()
        if settings.no_host_key_check:
            ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # nosec B507 - asked for
            # As SSHHook: a host the file lists with another key is still refused. (Loaded as
            # "system" keys: paramiko never writes those back to the file.)
            listed = settings.known_hosts_when_unchecked()
            if listed is not None:
                ssh.load_system_host_keys(listed)
        else:
            ssh.set_missing_host_key_policy(policy)
            if settings.host_key is not None:
                name = settings.host if settings.port == 22 else f"[{settings.host}]:{settings.port}"
                key = _paramiko_public_key(settings.host_key)
                ssh.get_host_keys().add(name, key.get_name(), key)
            elif settings.known_hosts is not None:
                ssh.load_host_keys(settings.known_hosts)
        try:
            ssh.connect(
                settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password,
                pkey=self._pkey,
                timeout=settings.connect_timeout,
                banner_timeout=settings.connect_timeout,
                auth_timeout=settings.connect_timeout,
                allow_agent=settings.look_for_keys and self._pkey is None,
                look_for_keys=settings.look_for_keys and self._pkey is None,
                disabled_algorithms=_disabled_ciphers(settings),
            )
            sftp = ssh.open_sftp()
        except Exception as exc:
            ssh.close()
            raise _connect_error(settings, exc, policy.presented) from exc
        holder = _ThreadClient(ssh, sftp)
        with self._lock:
            if self._closed:
                holder.close()
                raise SFTPPoolClosedError(f"the SyncSFTPPool for {self.conn_id!r} is closed")
            self._clients.append(holder)
            self._opened += 1
        return holder


def _disabled_ciphers(settings: ConnectionSettings) -> dict[str, list[str]] | None:
    # paramiko has no order of preference to pass: the `ciphers` extra limits what it offers.
    if settings.ciphers is None:
        return None
    offered = paramiko.Transport._preferred_ciphers
    return {"ciphers": [name for name in offered if name not in settings.ciphers]}


def _is_status_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.EACCES)


def _paramiko_private_key(settings: ConnectionSettings) -> Any:
    if settings.client_key is None:
        return None
    text = settings.client_key.export_private_key("openssh").decode()
    for key_type in _PARAMIKO_KEY_TYPES:
        try:
            return key_type.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise SFTPConnectError(
        f"{settings.describe()}: {settings.key_source} is a {settings.client_key.get_algorithm()} key, "
        "which paramiko cannot use; use an RSA, ECDSA or Ed25519 key",
        conn_id=settings.conn_id,
        permanent=True,
    )


def _paramiko_public_key(key: asyncssh.SSHKey) -> Any:
    algorithm, data = key.export_public_key("openssh").decode().split()[:2]
    return paramiko.PKey.from_type_string(algorithm, base64.b64decode(data))


def _asyncssh_public_key(key: Any) -> asyncssh.SSHKey | None:
    try:
        return asyncssh.import_public_key(f"{key.get_name()} {key.get_base64()}")
    except Exception:
        return None


def _connect_error(settings: ConnectionSettings, exc: BaseException, presented: Any) -> SFTPConnectError:
    kind: FailureKind
    if isinstance(exc, paramiko.BadHostKeyException):
        kind, presented = "host_key", exc.key
    elif isinstance(exc, paramiko.SSHException) and presented is not None:
        kind = "host_key"
    elif isinstance(exc, paramiko.AuthenticationException):
        kind = "login"
    elif isinstance(exc, socket.gaierror):
        kind = "resolve"
    elif isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        refused = all(isinstance(e, ConnectionRefusedError) for e in exc.errors.values())
        kind = "refused" if refused else "network"
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        kind = "timeout"
    elif isinstance(exc, (EOFError, ConnectionError, paramiko.SSHException)):
        kind = "dropped"
    elif isinstance(exc, OSError):
        kind = "network"
    else:
        kind = "other"
    shown = _asyncssh_public_key(presented) if presented is not None else None
    return failure(settings, kind, exc, shown)
