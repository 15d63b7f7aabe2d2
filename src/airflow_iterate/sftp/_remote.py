"""Work on a borrowed session, shared by the transfer helpers: errors named, one handle per file.

Latency, not bandwidth, bounds small files: a download is one round trip to open the file, one for
its first block (and, from servers other than OpenSSH, its size, sent together), and the close is
not waited for. A larger file is read on through the same handle, so it comes from one version of
the file however it is renamed or replaced meanwhile; a file whose size changes while it is read,
or that is not a regular file (a device, ...), is an error naming it, never a partial result.

CPU, not latency, bounds a busy client: the helpers borrow a session without a context object or
a coroutine when one has room, and make their requests through the session's
:class:`~._requests.Requests` (one request per step, no file object, no task per file).
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncssh
from asyncssh.constants import FXF_READ

from ._error_map import _UnusableFile, transfer_error
from ._errors import SFTPPoolError
from ._pool import SFTPPool
from ._requests import Requests

__all__ = [
    "FIRST_READ",
    "REQUESTS_IN_FLIGHT",
    "STREAM_THRESHOLD",
    "on_server",
    "read_file",
    "settle",
]

#: the first read of a download, sent right after the open (at most what the server says it
#: accepts); a file larger than that is read on from there with parallel requests
FIRST_READ = 256 * 1024
#: local files larger than this are uploaded a chunk at a time rather than read in one piece
STREAM_THRESHOLD = 1024 * 1024
#: read or write requests in flight for the rest of a large file (as asyncssh's own parallel reads)
REQUESTS_IN_FLIGHT = 16

T = TypeVar("T")

#: what a failed transfer raises, named after its file; anything else passes as it is
_NAMED = (asyncssh.Error, OSError, asyncio.TimeoutError, _UnusableFile)


async def on_server(
    pool: SFTPPool, operation: str, path: str, work: Callable[..., Awaitable[T]], *args: Any
) -> T:
    """``await work(session, *args)`` on a borrowed session (its :class:`Requests`, whose ``sftp``
    is the asyncssh client); SFTP and transport errors come out named.

    As ``async with pool.client()`` does, the error that ends the work decides the connection's
    fate (see ``_holders``).
    """
    session = pool._try_acquire()
    if session is None:
        session = await pool._acquire(pool.acquire_timeout)
    try:
        result = await work(session.requests, *args)
    except BaseException as exc:
        pool._release(session, exc)
        if isinstance(exc, _NAMED) and not isinstance(exc, SFTPPoolError):
            raise transfer_error(exc, operation, path, pool.conn_id) from exc
        raise
    pool._release(session, None)
    return result


async def read_file(session: Requests, path: str, write: Callable[[int, bytes], object] | None = None) -> Any:
    """The file's bytes; or, with ``write(offset, block)`` receiving them, its size.

    Two round trips for a small file: the open, then its first block. From a server whose short
    reads mean the end of the file (OpenSSH), a short first block is the whole file; from others
    the file's size is requested together with the block. asyncssh's own ``read()`` would ask once
    more to be sure of the end of the file. A larger file is read on through the same handle, and
    its size and modification time are checked again at the end. The close is sent, not awaited.

    Raises :class:`_UnusableFile` for a file that is not a regular file or that changed size while
    it was read.
    """
    handle = await session.open(session.sftp.compose_path(path), FXF_READ)
    try:
        first_read = min(FIRST_READ, session.max_read or FIRST_READ)
        if session.whole_reads:
            first = await session.read_block(handle, 0, first_read)
            if len(first) < first_read:
                return _deliver(first, write)
            attrs = await session.fstat(handle)
        else:
            attrs, first = await asyncio.gather(
                session.fstat(handle), session.read_block(handle, 0, first_read)
            )
        size = _regular_size(attrs)
        if size is None:  # a server that does not say: read on until the end
            return await _read_unsized(session, handle, first, first_read, write)
        if len(first) >= size:
            if len(first) > size and session.whole_reads:
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
        await _read_range(session, handle, len(first), size, first_read, deliver)
        after = await session.fstat(handle)
        if after.size != size or after.mtime != attrs.mtime:
            raise _changed(
                f"its size went from {size} to {after.size} bytes"
                if after.size != size
                else "it was modified"
            )
    finally:
        # Nothing depends on the close's answer: send it and go, saving a round trip per file.
        session.close_later(handle)
    return bytes(buffer) if buffer is not None else size


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
    session: Requests, handle: bytes, start: int, end: int, block: int, deliver: Callable[[int, bytes], None]
) -> None:
    """Read bytes ``start`` to ``end`` of the file, ``REQUESTS_IN_FLIGHT`` requests at a time.

    A server may answer less than asked: the rest is asked for again. An answer of nothing before
    ``end`` means the file is shorter than it was: :class:`_UnusableFile`.
    """
    following = start
    again: list[tuple[int, int]] = []
    pending: dict[asyncio.Future[Any], tuple[int, int]] = {}
    try:
        while True:
            while len(pending) < REQUESTS_IN_FLIGHT and (again or following < end):
                if again:
                    offset, length = again.pop()
                else:
                    offset, length = following, min(block, end - following)
                    following += length
                pending[session.read(handle, offset, length)] = (offset, length)
            if not pending:
                return
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for answer in done:
                offset, length = pending.pop(answer)
                data = session.data_of(*answer.result())
                if not data:
                    raise _changed(f"it ended at byte {offset}, not at {end}")
                deliver(offset, data)
                if len(data) < length:
                    again.append((offset + len(data), length - len(data)))
    finally:
        settle(pending)


def settle(answers: Any) -> None:
    """Give up on requests still in flight: their answers are dropped when they come, and those
    that already failed are not reported as never retrieved."""
    for answer in answers:
        if not answer.done():
            answer.cancel()
        elif not answer.cancelled():
            answer.exception()


async def _read_unsized(
    session: Requests, handle: bytes, first: bytes, block: int, write: Callable[[int, bytes], object] | None
) -> Any:
    """The rest of a file whose size the server does not tell, one block at a time until the end."""
    chunks = [first]
    offset = len(first)
    if write is not None and first:
        write(0, first)
    while True:
        data = await session.read_block(handle, offset, block)
        if not data:
            break
        if write is None:
            chunks.append(data)
        else:
            write(offset, data)
        offset += len(data)
    return b"".join(chunks) if write is None else offset
