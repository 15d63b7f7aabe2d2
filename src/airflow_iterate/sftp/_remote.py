"""Work on a borrowed client, shared by the transfer helpers: errors named, one handle per file.

Latency, not bandwidth, bounds small files: a download is one round trip to open the file, one for
its first block (and, from servers other than OpenSSH, its size, sent together), and the close is
not waited for. A larger file is read on through the same handle, so it comes from one version of
the file however it is renamed or replaced meanwhile; a file whose size changes while it is read,
or that is not a regular file (a device, ...), is an error naming it, never a partial result.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncssh

from ._connect import reads_whole_files
from ._error_map import _UnusableFile, transfer_error
from ._errors import SFTPPoolError
from ._pool import SFTPPool

__all__ = [
    "FIRST_READ",
    "STREAM_THRESHOLD",
    "close_quietly",
    "in_background",
    "on_server",
    "open_file",
    "read_file",
]

log = logging.getLogger("airflow_iterate.sftp")

#: the first read of a download, sent right after the open (at most what the server says it
#: accepts); a file larger than that is read on from there with parallel requests
FIRST_READ = 256 * 1024
#: local files larger than this are uploaded a chunk at a time rather than read in one piece
STREAM_THRESHOLD = 1024 * 1024
#: read requests in flight for the rest of a large file (as asyncssh's own parallel reads)
READS_IN_FLIGHT = 16

T = TypeVar("T")


async def on_server(pool: SFTPPool, operation: str, path: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(sftp)`` on a borrowed client; SFTP and transport errors come out named."""
    try:
        async with pool.client() as sftp:
            return await work(sftp)
    except SFTPPoolError:
        raise
    except (asyncssh.Error, OSError, asyncio.TimeoutError, _UnusableFile) as exc:
        raise transfer_error(exc, operation, path, pool.conn_id) from exc


# Strong references to background requests nobody waits for (asyncio keeps only weak ones).
_background: set[asyncio.Task[None]] = set()


def in_background(request: Awaitable[None]) -> None:
    task = asyncio.ensure_future(request)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def open_file(
    sftp: asyncssh.SFTPClient,
    path: str,
    mode: str,
    *,
    attrs: asyncssh.SFTPAttrs | None = None,
    block_size: int = 0,
) -> asyncssh.SFTPClientFile:
    """``sftp.open()``, safe to cancel: a handle the server opens after its caller gave up is closed.

    asyncssh drops the answer to a request whose caller was cancelled, so the server's handle would
    stay open for the connection's life. Here the open runs on by itself, and closes what it opened
    if nobody takes it. ``block_size=0``: each read or write is one request.
    """
    opening = asyncio.ensure_future(
        sftp.open(path, mode, attrs or asyncssh.SFTPAttrs(), block_size=block_size)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_orphan)
        raise


def _close_orphan(opening: asyncio.Future[asyncssh.SFTPClientFile]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return  # nothing was opened (the exception is retrieved: nobody else will)
    in_background(close_quietly(opening.result()))


async def read_file(
    sftp: asyncssh.SFTPClient, path: str, write: Callable[[int, bytes], object] | None = None
) -> Any:
    """The file's bytes; or, with ``write(offset, block)`` receiving them, its size.

    Two round trips for a small file: the open, then its first block. From a server whose short
    reads mean the end of the file (OpenSSH), a short first block is the whole file; from others
    the file's size is requested together with the block. asyncssh's own ``read()`` would ask once
    more to be sure of the end of the file. A larger file is read on through the same handle, and
    its size and modification time are checked again at the end.

    Raises :class:`_UnusableFile` for a file that is not a regular file or that changed size while
    it was read.
    """
    f = await open_file(sftp, path, "rb")
    try:
        first_read = min(FIRST_READ, sftp.limits.max_read_len or FIRST_READ)
        if reads_whole_files(sftp):
            first = await _read_block(f, first_read, 0)
            if len(first) < first_read:
                return _deliver(first, write)
            attrs = await f.stat()
        else:
            attrs, first = await asyncio.gather(f.stat(), _read_block(f, first_read, 0))
        size = _regular_size(attrs)
        if size is None:  # a server that does not say: read on until the end
            return await _read_unsized(f, first, first_read, write)
        if len(first) >= size:
            if len(first) > size and reads_whole_files(sftp):
                raise _changed(f"{len(first)} bytes were read of the {size} it has now")
            return _deliver(first, write)
        buffer = bytearray(size) if write is None else None

        def deliver(offset: int, data: bytes) -> None:
            if buffer is not None:
                buffer[offset : offset + len(data)] = data
            else:
                assert write is not None
                write(offset, data)

        deliver(0, first)
        block = min(FIRST_READ, sftp.limits.max_read_len or FIRST_READ)
        await _read_range(f, len(first), size, block, deliver)
        after = await f.stat()
        if after.size != size or after.mtime != attrs.mtime:
            raise _changed(
                f"its size went from {size} to {after.size} bytes"
                if after.size != size
                else "it was modified"
            )
    finally:
        # Nothing depends on the close's answer: send it and go, saving a round trip per file.
        in_background(close_quietly(f))
    return bytes(buffer) if buffer is not None else size


async def _read_block(f: asyncssh.SFTPClientFile, length: int, offset: int) -> bytes:
    """One read request (the file is opened with ``block_size=0``); ``b""`` at the end of the file."""
    data: bytes = await f.read(length, offset)
    return data


def _deliver(data: bytes, write: Callable[[int, bytes], object] | None) -> Any:
    if write is None:
        return data
    if data:
        write(0, data)
    return len(data)


def _regular_size(attrs: asyncssh.SFTPAttrs) -> int | None:
    """The size of a regular file; :class:`_UnusableFile` for anything else (a device, a pipe, ...)."""
    if attrs.permissions is not None:
        regular = stat.S_ISREG(attrs.permissions)
    else:
        regular = attrs.type in (asyncssh.FILEXFER_TYPE_REGULAR, asyncssh.FILEXFER_TYPE_UNKNOWN)
    if not regular:
        raise _UnusableFile("it is not a regular file (a device, a pipe or a directory); only files are read")
    size: int | None = attrs.size
    return size


def _changed(how: str) -> _UnusableFile:
    return _UnusableFile(
        f"the file changed while it was read ({how}); nothing was kept, retry once it is complete",
        permanent=False,  # still being written: a later attempt reads it whole
    )


async def _read_range(
    f: asyncssh.SFTPClientFile, start: int, end: int, block: int, deliver: Callable[[int, bytes], None]
) -> None:
    """Read bytes ``start`` to ``end`` of ``f``, ``READS_IN_FLIGHT`` requests at a time.

    A server may answer less than asked: the rest is asked for again. An answer of nothing before
    ``end`` means the file is shorter than it was: :class:`_UnusableFile`.
    """
    following = start
    again: list[tuple[int, int]] = []
    pending: set[asyncio.Task[tuple[int, int, bytes]]] = set()

    async def read(offset: int, length: int) -> tuple[int, int, bytes]:
        return offset, length, await _read_block(f, length, offset)

    try:
        while True:
            while len(pending) < READS_IN_FLIGHT and (again or following < end):
                if again:
                    offset, length = again.pop()
                else:
                    offset, length = following, min(block, end - following)
                    following += length
                pending.add(asyncio.ensure_future(read(offset, length)))
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                offset, length, data = task.result()
                if not data:
                    raise _changed(f"it ended at byte {offset}, not at {end}")
                deliver(offset, data)
                if len(data) < length:
                    again.append((offset + len(data), length - len(data)))
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _read_unsized(
    f: asyncssh.SFTPClientFile, first: bytes, block: int, write: Callable[[int, bytes], object] | None
) -> Any:
    """The rest of a file whose size the server does not tell, one block at a time until the end."""
    chunks = [first]
    offset = len(first)
    if write is not None and first:
        write(0, first)
    while True:
        data = await _read_block(f, block, offset)
        if not data:
            break
        if write is None:
            chunks.append(data)
        else:
            write(offset, data)
        offset += len(data)
    return b"".join(chunks) if write is None else offset


async def close_quietly(f: asyncssh.SFTPClientFile) -> None:
    try:
        await f.close()
    except (asyncssh.Error, OSError) as exc:  # the connection went away: so did the handle
        log.debug("closing a remote file failed: %s", exc)
