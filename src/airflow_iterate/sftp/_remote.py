"""Work on a borrowed client, shared by the transfer helpers: errors named, small files read fast.

Latency, not bandwidth, bounds small files: a download is one round trip to open the file, one for
its size and first block (sent together), and the close is not waited for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncssh

from ._connect import reads_whole_files
from ._error_map import transfer_error
from ._errors import SFTPPoolError
from ._pool import SFTPPool

__all__ = ["FIRST_READ", "STREAM_THRESHOLD", "in_background", "on_server", "read_file"]

log = logging.getLogger("airflow_iterate.sftp")

#: the first read of a download, sent together with the size request (at most what the server
#: says it accepts); a file larger than that is read again from there with parallel requests
FIRST_READ = 256 * 1024
#: local files larger than this are streamed by asyncssh rather than read or written in one piece
STREAM_THRESHOLD = 1024 * 1024

T = TypeVar("T")


async def on_server(pool: SFTPPool, operation: str, path: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(sftp)`` on a borrowed client; SFTP and transport errors come out named."""
    try:
        async with pool.client() as sftp:
            return await work(sftp)
    except SFTPPoolError:
        raise
    except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
        raise transfer_error(exc, operation, path, pool.conn_id) from exc


# Strong references to background requests nobody waits for (asyncio keeps only weak ones).
_background: set[asyncio.Task[None]] = set()


def in_background(request: Awaitable[None]) -> None:
    task = asyncio.ensure_future(request)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def read_file(sftp: asyncssh.SFTPClient, path: str, *, limit: int | None = None) -> Any:
    """The file's bytes, or ``None`` when it is larger than ``limit``.

    Two round trips for a small file: the open, then its first block. From a server whose short
    reads mean the end of the file (OpenSSH), a short first block is the whole file; from others
    the file's size is requested together with the block. asyncssh's own ``read()`` would ask once
    more to be sure of the end of the file.
    """
    # block_size=0: one read request, whatever the server answers (it may answer less than asked)
    f = await sftp.open(path, "rb", block_size=0)
    try:
        first_read = min(FIRST_READ, sftp.limits.max_read_len or FIRST_READ)
        if reads_whole_files(sftp):
            first = await f.read(first_read, 0)
            if len(first) < first_read:
                return first
            # A large file: its size only matters against the limit (asyncssh finds the rest's).
            size = (await f.stat()).size if limit is not None else None
        else:
            attrs, first = await asyncio.gather(f.stat(), f.read(first_read, 0))
            size = attrs.size
            if size is not None and len(first) >= size:
                return first
        if limit is not None and (size is None or size > limit):
            return None
    finally:
        # Nothing depends on the close's answer: send it and go, saving a round trip per file.
        in_background(_close_quietly(f))
    # Larger than one block: read the rest with asyncssh's parallel requests.
    async with sftp.open(path, "rb") as rest:
        remaining = await rest.read(size - len(first) if size is not None else -1, len(first))
    return first + remaining


async def _close_quietly(f: asyncssh.SFTPClientFile) -> None:
    try:
        await f.close()
    except (asyncssh.Error, OSError) as exc:  # the connection went away: so did the handle
        log.debug("closing a remote file failed: %s", exc)
