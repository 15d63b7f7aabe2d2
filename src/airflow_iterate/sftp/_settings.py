"""Airflow ``sftp`` connections, read into :class:`ConnectionSettings`.

The connection is interpreted the way the sftp provider's hooks do it (``SFTPHook`` /
``SFTPHookAsync``), so a connection that works with them works here:

* host, port (default 22), login (default: the local user), password;
* extras ``private_key`` (key text) or ``key_file`` (path), with ``private_key_passphrase`` /
  ``passphrase``; ``look_for_keys: false`` stops the fallback to ``~/.ssh`` keys and the agent;
* host key checking ON by default: the ``host_key`` extra (``"<type> <base64>"``; a bare base64 key
  means ssh-rsa) pins the server's key, otherwise the ``known_hosts`` extra or ``~/.ssh/known_hosts``
  must list it; ``no_host_key_check: true`` (or the deprecated ``ignore_hostkey_verification``)
  turns checking off explicitly, and contradicts a ``host_key``. As with ``SSHHook``, it accepts
  the key of a host the known_hosts file does not list, but a host listed there with another key
  is still refused, unless ``allow_host_key_change: true`` is set too;
* ``conn_timeout``: seconds allowed to connect (TCP, handshake and login together);
* ``ciphers``: the ciphers to offer, in order of preference (a list, or names separated by commas),
  as ``SSHHook`` reads it. Without it AES-GCM comes first, then asyncssh's defaults: with the CPU's
  AES instructions it costs a fraction of chacha20-poly1305, which asyncssh prefers and computes
  partly in Python for every packet (the largest single cost of a busy download task).

Reading a connection goes through the Airflow SDK, which is synchronous (in a task it talks to the
supervisor over a socket; ``extra_dejson`` masks secrets the same way): it is always called in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import asyncssh.encryption

from .._core import is_permanent_error
from ._errors import SFTPConnectError

__all__ = [
    "DEFAULT_KNOWN_HOSTS",
    "ConnectionSettings",
    "default_ciphers",
    "load_settings",
    "read_settings",
    "settings_from_connection",
]

log = logging.getLogger("airflow_iterate.sftp")

DEFAULT_PORT = 22
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to open an SSH connection, resolved from an Airflow connection."""

    conn_id: str
    host: str
    port: int
    username: str
    password: str | None = field(default=None, repr=False)
    #: the key from the ``private_key`` or ``key_file`` extra, already decrypted
    client_key: asyncssh.SSHKey | None = field(default=None, repr=False)
    #: where the key came from, for error messages
    key_source: str | None = None
    look_for_keys: bool = True
    #: the pinned server key (``host_key`` extra)
    host_key: asyncssh.SSHKey | None = None
    #: an existing known_hosts file to check the server's key against, when no key is pinned
    known_hosts: str | None = None
    no_host_key_check: bool = False
    #: with ``no_host_key_check``, accept a host that known_hosts lists with another key too
    allow_host_key_change: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    #: the ``ciphers`` extra; ``None``: :func:`default_ciphers`
    ciphers: tuple[str, ...] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        return f"SFTP connection {self.conn_id!r} ({self.username}@{self.address})"

    def credentials(self) -> str:
        tried = []
        if self.key_source:
            tried.append(self.key_source)
        elif self.look_for_keys:
            tried.append("the default keys in ~/.ssh and the SSH agent")
        if self.password:
            tried.append("the connection's password")
        return " and ".join(tried) or "no credentials at all"

    def known_hosts_arg(self) -> Any:
        """The asyncssh ``known_hosts`` option: a pinned key, a file, or ``None`` (no checking).

        With ``no_host_key_check`` the known_hosts file is still given when there is one (unless
        ``allow_host_key_change``): the client accepts the key of a host it does not list
        (:meth:`lists_host`), a listed host must show a listed key.
        """
        if self.no_host_key_check:
            return self.known_hosts_when_unchecked()
        if self.host_key is not None:
            # Lists of trusted host keys, CA keys and revoked keys: the pinned key is trusted for
            # this connection whatever name or port the server is reached by.
            return ([self.host_key], [], [])
        if self.known_hosts is not None:
            return self.known_hosts
        # No file to check against: trust nothing, so that the server's key is reported as untrusted.
        return ([], [], [])

    def known_hosts_when_unchecked(self) -> str | None:
        """With ``no_host_key_check``: the known_hosts file that still refuses a host's key when it
        lists the host with another key; ``None``: any key is accepted."""
        if not self.no_host_key_check or self.allow_host_key_change:
            return None
        return self.known_hosts

    def lists_host(self, addr: str | None = None) -> bool:
        """Whether the known_hosts file lists this host (with any key or CA)."""
        if self.known_hosts is None:
            return False
        try:
            matched = asyncssh.match_known_hosts(self.known_hosts, self.host, addr or self.host, self.port)
        except (OSError, ValueError, asyncssh.Error):
            return False
        return bool(matched[0] or matched[1])


# -- reading the Airflow connection (in a thread) -------------------------------------------------


def read_settings(conn_id: str, *, no_host_key_check: bool | None = None) -> ConnectionSettings:
    """Fetch ``conn_id`` through the Airflow SDK and resolve it. Blocking: call it in a thread."""
    from airflow.sdk import BaseHook

    from .._airflow._compat import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise SFTPConnectError(
            f"SFTP connection {conn_id!r} is not defined: create it (UI: Admin > Connections, "
            f"`airflow connections add {conn_id} --conn-type sftp ...`, or an "
            f"AIRFLOW_CONN_{conn_id.upper()} environment variable) or fix the connection id",
            conn_id=conn_id,
            permanent=True,
        ) from None
    return settings_from_connection(connection, no_host_key_check=no_host_key_check)


async def load_settings(
    conn_id: str | None, connection: Any = None, *, no_host_key_check: bool | None = None
) -> ConnectionSettings:
    """:func:`read_settings` (or :func:`settings_from_connection`) off the event loop."""
    if connection is not None:
        return await asyncio.to_thread(
            settings_from_connection, connection, no_host_key_check=no_host_key_check
        )
    assert conn_id is not None
    return await asyncio.to_thread(read_settings, conn_id, no_host_key_check=no_host_key_check)


def settings_from_connection(connection: Any, *, no_host_key_check: bool | None = None) -> ConnectionSettings:
    """Resolve an Airflow ``Connection`` (SDK or models) the way the sftp provider's hooks do.

    Blocking (``extra_dejson`` masks secrets through the SDK; key files are read): call it in a
    thread from async code.
    """
    conn_id = str(getattr(connection, "conn_id", None) or "<unnamed connection>")

    def fail(message: str, *, permanent: bool = True) -> SFTPConnectError:
        # the connection is defined wrong: no retry of an item fixes that
        return SFTPConnectError(
            f"SFTP connection {conn_id!r}: {message}", conn_id=conn_id, permanent=permanent
        )

    host = connection.host
    if not host:
        raise fail("the connection has no host; set the host of the SFTP server")
    port = int(connection.port or DEFAULT_PORT)
    username = connection.login or getpass.getuser()
    extra: dict[str, Any] = dict(connection.extra_dejson or {})

    passphrase = extra.get("private_key_passphrase") or extra.get("passphrase") or None
    private_key_text = extra.get("private_key")
    key_file = extra.get("key_file")
    if private_key_text and key_file:
        raise fail("both the `private_key` and `key_file` extras are set; keep one of them")
    client_key: asyncssh.SSHKey | None = None
    key_source: str | None = None
    try:
        if private_key_text:
            key_source = "the key in the `private_key` extra"
            client_key = asyncssh.import_private_key(private_key_text, passphrase)
        elif key_file:
            key_source = f"the key file {key_file!r} (`key_file` extra)"
            client_key = asyncssh.read_private_key(os.path.expanduser(key_file), passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        raise fail(
            f"cannot load {key_source}: {exc}; it must be a private key in OpenSSH or PEM format "
            "(with `private_key_passphrase` set if it is encrypted)"
        ) from exc
    except OSError as exc:  # missing or unreadable: permanent; an I/O error may pass
        raise fail(f"cannot read {key_source}: {exc}", permanent=is_permanent_error(exc)) from exc

    raw_check = extra.get("no_host_key_check")
    if raw_check is None:
        raw_check = extra.get("ignore_hostkey_verification")
    skip_check = False if raw_check is None else str(raw_check).strip().lower() == "true"
    if no_host_key_check is not None:
        skip_check = no_host_key_check
    raw_host_key = extra.get("host_key")
    host_key = None
    if raw_host_key:
        if skip_check:
            raise fail(
                "host key checking is turned off (`no_host_key_check`) but a `host_key` is given; "
                "remove one of them"
            )
        host_key = _parse_host_key(str(raw_host_key), fail)
    known_hosts = os.path.expanduser(str(extra.get("known_hosts") or DEFAULT_KNOWN_HOSTS))
    if not os.path.isfile(known_hosts):
        if extra.get("known_hosts") and not skip_check and host_key is None:
            raise fail(f"the known_hosts file {known_hosts!r} (`known_hosts` extra) does not exist")
        known_hosts_file = None
    else:
        known_hosts_file = known_hosts
    if skip_check:
        log.warning(
            "SFTP connection %r: host key checking is off (no_host_key_check); the server is not "
            "authenticated",
            conn_id,
        )

    timeout = extra.get("conn_timeout")
    try:
        connect_timeout = float(timeout) if timeout not in (None, "") else DEFAULT_CONNECT_TIMEOUT
    except (TypeError, ValueError):
        raise fail(f"the `conn_timeout` extra must be a number of seconds, got {timeout!r}") from None

    ciphers = _parse_ciphers(extra.get("ciphers"), fail)

    return ConnectionSettings(
        conn_id=conn_id,
        host=str(host),
        port=port,
        username=str(username),
        password=connection.password or None,
        client_key=client_key,
        key_source=key_source,
        look_for_keys=str(extra.get("look_for_keys", "true")).strip().lower() != "false",
        host_key=host_key,
        known_hosts=known_hosts_file,
        no_host_key_check=skip_check,
        allow_host_key_change=str(extra.get("allow_host_key_change", "false")).strip().lower() == "true",
        connect_timeout=connect_timeout,
        ciphers=ciphers,
    )


def default_ciphers() -> tuple[str, ...]:
    """AES-GCM first, then the rest of asyncssh's default ciphers in their order."""
    defaults = [alg.decode() for alg in asyncssh.encryption.get_default_encryption_algs()]
    return (*PREFERRED_CIPHERS, *(alg for alg in defaults if alg not in PREFERRED_CIPHERS))


def _parse_ciphers(raw: Any, fail: Callable[[str], SFTPConnectError]) -> tuple[str, ...] | None:
    if raw in (None, "", []):
        return None
    names: Sequence[Any] = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise fail(f"the `ciphers` extra must be a list of cipher names, got {raw!r}")
    ciphers = tuple(name.strip() for name in names if name.strip())
    known = {alg.decode() for alg in asyncssh.encryption.get_encryption_algs()}
    unknown = [name for name in ciphers if name not in known]
    if unknown:
        raise fail(
            f"the `ciphers` extra names ciphers this client does not know: {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(known))}"
        )
    return ciphers


def _parse_host_key(raw: str, fail: Callable[[str], SFTPConnectError]) -> asyncssh.SSHKey:
    parts = raw.strip().split()
    if parts[0] == "ssh-dss":
        raise fail("DSA host keys are not supported; pin the server's RSA, ECDSA or Ed25519 key instead")
    # "<type> <base64> [comment]"; a bare base64 key is RSA, as in the provider's hooks
    text = " ".join(parts[:2]) if len(parts) >= 2 else f"ssh-rsa {parts[0]}"
    try:
        return asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise fail(
            f"the `host_key` extra is not a public key ({exc}); it must be '<type> <base64>' as in "
            "a known_hosts line without the host name (e.g. from `ssh-keyscan`, checked out of band)"
        ) from None
