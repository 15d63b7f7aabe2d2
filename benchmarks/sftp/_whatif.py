"""Two changes to ``airflow_iterate.sftp`` that the profile of row 5 points at, applied as patches.

Measured as their own row so that the claim "this would close the gap" is reproducible; the
package itself is not changed. Each patch replaces one internal name, the way the change would.

* ``aes``: offer AES-GCM before chacha20-poly1305 when connecting. asyncssh's chacha20-poly1305
  builds two cipher objects and a Poly1305 per packet in Python; AES-GCM is one call into OpenSSL
  on the CPU's AES instructions. It was the largest single item in the profile.
* ``no_stat``: read a small file with one request instead of an fstat and a read sent together.
  OpenSSH answers a read of a regular file with everything up to the requested length, so a
  short answer is the whole file; only a full-length answer needs the existing path.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import asyncssh

from airflow_iterate.sftp import _connection, _transfer

PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")


def _prefer_aes() -> None:
    original = asyncssh.SSHClientConnectionOptions

    def options(*args: Any, **kwargs: Any) -> asyncssh.SSHClientConnectionOptions:
        kwargs.setdefault("encryption_algs", list(PREFERRED_CIPHERS))
        return original(*args, **kwargs)

    # Only _connection's view of asyncssh changes; everything else keeps the real module.
    shim = types.ModuleType("asyncssh")
    shim.__dict__.update(asyncssh.__dict__)
    shim.SSHClientConnectionOptions = options  # type: ignore[attr-defined]
    _connection.asyncssh = shim  # type: ignore[attr-defined]


def _read_without_stat() -> None:
    original = _transfer._read

    async def read(sftp: asyncssh.SFTPClient, path: str, *, limit: int | None = None) -> Any:
        wanted = min(_transfer.FIRST_READ, sftp.limits.max_read_len or _transfer.FIRST_READ)
        f = await sftp.open(path, "rb", block_size=0)
        try:
            first = await f.read(wanted, 0)
        finally:
            closing = asyncio.ensure_future(_transfer._close_quietly(f))
            _transfer._closing.add(closing)
            closing.add_done_callback(_transfer._closing.discard)
        if len(first) < wanted:
            return first
        return await original(sftp, path, limit=limit)

    _transfer._read = read


def apply() -> None:
    _prefer_aes()
    _read_without_stat()
