"""Uploads of local files or bytes, one or many; atomic (a temporary name, then a rename) by default.

What arrives on the server is always a regular file with the bytes uploaded: a local link is
followed (its target's bytes are sent, as OpenSSH's ``sftp put`` does), never copied as a link. A
file that replaces another keeps the old one's permissions; a new file gets the local file's
(as ``sftp put`` sends them, the server's umask applying), or the server's default for bytes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import posixpath
import stat
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeAlias

import asyncssh
from asyncssh.constants import FXF_CREAT, FXF_TRUNC, FXF_WRITE

from .._core._validate import positive_int
from ._error_map import is_transport_error
from ._errors import SFTPPoolUsageError
from ._many import DEFAULT_CONCURRENCY, TransferResult, run_many
from ._pool import SFTPPool
from ._remote import REQUESTS_IN_FLIGHT, STREAM_THRESHOLD, on_server, settle
from ._requests import NO_ATTRS, SFTP_VERSION, Requests

__all__ = ["LocalSource", "upload_file", "upload_many"]

log = logging.getLogger("airflow_iterate.sftp")

#: what an upload reads: a local path, or the bytes themselves
LocalSource: TypeAlias = "str | os.PathLike[str] | bytes"

#: a large local file is read and sent this much at a time (each piece with parallel writes)
UPLOAD_CHUNK = 4 * 1024 * 1024
#: how an upload opens its file: created, or emptied ("wb")
_WRITE_NEW = FXF_WRITE | FXF_CREAT | FXF_TRUNC


async def upload_file(
    pool: SFTPPool, source: LocalSource, remote_path: str, *, make_dirs: bool = False, atomic: bool = True
) -> int:
    """Upload a local file (a path) or ``bytes`` to ``remote_path``; returns the bytes written.

    :param make_dirs: create the remote parent directories first (one more round trip or two).
    :param atomic: write a hidden temporary file next to ``remote_path`` and rename it over
        ``remote_path`` once complete, so that nobody ever sees a partial file there (two more
        round trips: the old file's permissions, the rename). A failed upload leaves the old file,
        if any, in place.

    A local link is followed: its target's bytes are uploaded. A replaced file keeps its
    permissions; a new one gets the local file's (the server's default for ``bytes``).
    """
    return await _upload(pool, source, remote_path, _DirectoryMaker() if make_dirs else None, atomic)


async def upload_many(
    pool: SFTPPool,
    files: Iterable[tuple[LocalSource, str]],
    *,
    make_dirs: bool = False,
    atomic: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[TransferResult], object] | None = None,
) -> list[TransferResult]:
    """Upload ``(source, remote_path)`` pairs, ``concurrency`` at a time; one result per file.

    ``source`` is a local path or ``bytes``. With ``make_dirs`` each remote directory is created
    once for the whole call; ``atomic`` as in :func:`upload_file`.
    """
    positive_int("concurrency", concurrency, error=SFTPPoolUsageError)
    pairs = list(files)
    maker = _DirectoryMaker() if make_dirs else None
    sources = {remote: source for source, remote in pairs}

    async def one(remote: str) -> TransferResult:
        source = sources[remote]
        size = await _upload(pool, source, remote, maker, atomic)
        return TransferResult(remote, local=_local_name(source), size=size)

    if len(sources) != len(pairs):
        raise SFTPPoolUsageError("upload_many() got the same remote path twice")
    return await run_many(
        [remote for _, remote in pairs],
        one,
        lambda remote, exc: TransferResult(remote, local=_local_name(sources[remote]), error=exc),
        concurrency,
        progress,
    )


class _DirectoryMaker:
    """Creates each remote directory once, even when many uploads into it start together."""

    def __init__(self) -> None:
        self._made: dict[str, asyncio.Future[None]] = {}

    async def ensure(self, sftp: asyncssh.SFTPClient, directory: str) -> None:
        if directory in ("", "/", "."):
            return
        made = self._made.get(directory)
        if made is None:
            made = self._made[directory] = asyncio.ensure_future(sftp.makedirs(directory, exist_ok=True))
            made.add_done_callback(self._forget_failure(directory))
        await asyncio.shield(made)

    def _forget_failure(self, directory: str) -> Callable[[asyncio.Future[None]], None]:
        def done(future: asyncio.Future[None]) -> None:
            if future.cancelled() or future.exception() is not None:
                self._made.pop(directory, None)  # the next upload tries again

        return done


def _local_name(source: LocalSource) -> str | None:
    return None if isinstance(source, bytes) else os.fspath(source)


async def _upload(
    pool: SFTPPool, source: LocalSource, remote_path: str, maker: _DirectoryMaker | None, atomic: bool
) -> int:
    data: bytes | None
    local: Path | None = None
    #: the permissions a new file is created with (None: the server's default)
    mode: int | None = None
    if isinstance(source, bytes):
        data = source
    else:
        local = Path(os.fspath(source))
        # Local errors (missing file, ...) are raised as they are: they name the local path. A
        # link is followed, as open() does: its target's bytes are sent, never the link.
        status = local.stat()
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(errno.EISDIR, "a directory, not a file to upload", str(local))
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file, cannot be uploaded", str(local))
        mode = stat.S_IMODE(status.st_mode) & 0o777
        data = local.read_bytes() if status.st_size <= STREAM_THRESHOLD else None

    async def write(session: Requests, path: str, permissions: int | None, exact: bool) -> int:
        """Create (or truncate) ``path`` and write the content; ``exact``: set ``permissions`` on the
        file as they are (the server's umask applies to those a file is created with)."""
        attrs = (
            asyncssh.SFTPAttrs(permissions=permissions).encode(SFTP_VERSION)
            if permissions is not None
            else NO_ATTRS
        )
        handle = await session.open(session.sftp.compose_path(path), _WRITE_NEW, attrs)
        # the permissions go together with the writes: no round trip of their own
        setting = (
            session.fsetstat(handle, asyncssh.SFTPAttrs(permissions=permissions))
            if exact and permissions is not None
            else None
        )
        try:
            if data is not None:
                await _write_range(session, handle, 0, data)
                size = len(data)
            else:
                assert local is not None
                size = await _write_local(session, handle, local)
            if setting is not None:
                _mode_set(session, *await setting)
        except BaseException:
            if setting is not None:
                settle((setting,))
            session.close_later(handle)
            raise
        await session.close(handle)  # awaited: the rename below must come after the last write
        return size

    async def work(session: Requests) -> int:
        sftp = session.sftp
        if not atomic:
            if maker is not None:
                await maker.ensure(sftp, posixpath.dirname(remote_path))
            return await write(session, remote_path, mode, exact=False)
        directory, name = posixpath.split(remote_path)
        temporary = posixpath.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.partial")
        leftovers = _leftovers.setdefault(pool, set())
        # The file replaced keeps its permissions (as writing in place would): the temporary file
        # is created with them, never looser, and given them exactly before the rename.
        if maker is not None:
            _, kept = await asyncio.gather(
                maker.ensure(sftp, posixpath.dirname(remote_path)), _permissions(session, remote_path)
            )
        else:
            kept = await _permissions(session, remote_path)
        try:
            if kept is not None:
                size = await write(session, temporary, kept, exact=True)
            else:
                size = await write(session, temporary, mode, exact=False)
            await _replace(sftp, temporary, remote_path, leftovers)
        except BaseException:
            # Not awaited: the borrower may be leaving because it was cancelled. When the
            # connection is gone, the pool's next successful upload removes the file.
            in_background(_remove_quietly(sftp, temporary, leftovers))
            raise
        for leftover in list(leftovers):
            leftovers.discard(leftover)
            await _remove_quietly(sftp, leftover, leftovers)
        return size

    return await on_server(pool, "upload", remote_path, work)


async def _write_local(session: Requests, handle: bytes, local: Path) -> int:
    """Send a large local file a chunk at a time (each chunk with parallel writes)."""
    offset = 0
    with local.open("rb") as source:
        while chunk := source.read(UPLOAD_CHUNK):
            await _write_range(session, handle, offset, chunk)
            offset += len(chunk)
    return offset


async def _write_range(session: Requests, handle: bytes, start: int, data: bytes) -> None:
    """Write ``data`` at ``start``, in requests the server accepts, ``REQUESTS_IN_FLIGHT`` at a time."""
    block = session.max_write
    view = memoryview(data)
    following = 0
    pending: set[asyncio.Future[Any]] = set()
    try:
        while following < len(data) or pending:
            while len(pending) < REQUESTS_IN_FLIGHT and following < len(data):
                piece = bytes(view[following : following + block])
                pending.add(session.write(handle, start + following, piece))
                following += block
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for answer in done:
                session.check(*answer.result())
    finally:
        settle(pending)


async def _permissions(session: Requests, path: str) -> int | None:
    """The permission bits of the file at ``path`` (a link followed), None when there is none."""
    try:
        attrs = await session.stat(session.sftp.compose_path(path))
    except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
        return None
    if attrs.permissions is None:
        return None
    return stat.S_IMODE(attrs.permissions) & 0o777


def _mode_set(session: Requests, resptype: int, packet: Any) -> None:
    """The answer to the fsetstat that gives a file its permissions."""
    try:
        session.check(resptype, packet)
    except asyncssh.SFTPOpUnsupported:  # the file keeps what it was created with: never looser
        log.debug("the server cannot change a file's permissions; kept those it was created with")


async def _replace(sftp: asyncssh.SFTPClient, source: str, target: str, leftovers: set[str]) -> None:
    """Rename ``source`` over ``target``: atomically where the server can (OpenSSH's posix-rename).

    Elsewhere SFTP's own rename refuses an existing target: the old file is renamed aside first
    (briefly absent), and put back if the new one cannot take its place, so that a failure never
    leaves neither of them.
    """
    try:
        await sftp.posix_rename(source, target)
        return
    except asyncssh.SFTPOpUnsupported:
        pass
    directory, name = posixpath.split(target)
    aside = posixpath.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.old")
    try:
        await sftp.rename(target, aside)
        moved = True
    except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
        moved = False  # nothing to replace
    try:
        await sftp.rename(source, target)
    except BaseException as exc:
        if moved:
            if isinstance(exc, asyncio.CancelledError):
                in_background(_put_back(sftp, aside, target))
            else:
                await _put_back(sftp, aside, target)
        raise
    if moved:
        await _remove_quietly(sftp, aside, leftovers)


async def _put_back(sftp: asyncssh.SFTPClient, aside: str, target: str) -> None:
    try:
        await sftp.rename(aside, target)
    except (asyncssh.Error, OSError) as exc:
        log.warning(
            "the upload to %s failed and its old file could not be put back: it is %s (%s)",
            target,
            aside,
            exc,
        )


# Strong references to background requests nobody waits for (asyncio keeps only weak ones).
_background: set[asyncio.Task[None]] = set()


def in_background(request: Awaitable[None]) -> None:
    task = asyncio.ensure_future(request)
    _background.add(task)
    task.add_done_callback(_background.discard)


# Temporary files of failed uploads that could not be removed then, per pool: its next successful
# upload removes them, so that a cut connection leaves no litter on the server once retries succeed.
_leftovers: weakref.WeakKeyDictionary[SFTPPool, set[str]] = weakref.WeakKeyDictionary()


async def _remove_quietly(sftp: asyncssh.SFTPClient, path: str, leftovers: set[str]) -> None:
    try:
        await sftp.remove(path)
    except asyncssh.SFTPNoSuchFile:  # never created
        pass
    except (asyncssh.Error, OSError) as exc:
        if is_transport_error(exc):  # the connection went away: the next upload tries again
            leftovers.add(path)
        log.debug("removing the partial upload %s failed: %s", path, exc)
