"""Uploads of local files or bytes, one or many; atomic (a temporary name, then a rename) by default."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import uuid
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeAlias

import asyncssh

from .._core._validate import positive_int
from ._error_map import is_transport_error
from ._errors import SFTPPoolUsageError
from ._many import DEFAULT_CONCURRENCY, TransferResult, run_many
from ._pool import SFTPPool
from ._remote import STREAM_THRESHOLD, in_background, on_server

__all__ = ["LocalSource", "upload_file", "upload_many"]

log = logging.getLogger("airflow_iterate.sftp")

#: what an upload reads: a local path, or the bytes themselves
LocalSource: TypeAlias = "str | os.PathLike[str] | bytes"


async def upload_file(
    pool: SFTPPool, source: LocalSource, remote_path: str, *, make_dirs: bool = False, atomic: bool = True
) -> int:
    """Upload a local file (a path) or ``bytes`` to ``remote_path``; returns the bytes written.

    :param make_dirs: create the remote parent directories first (one more round trip or two).
    :param atomic: write a hidden temporary file next to ``remote_path`` and rename it over
        ``remote_path`` once complete, so that nobody ever sees a partial file there (one more
        round trip). A failed upload leaves the old file, if any, in place.
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
    if isinstance(source, bytes):
        data = source
    else:
        local = Path(os.fspath(source))
        # Local errors (missing file, ...) are raised as they are: they name the local path.
        data = local.read_bytes() if local.stat().st_size <= STREAM_THRESHOLD else None

    async def write(sftp: asyncssh.SFTPClient, path: str) -> int:
        if data is None:
            assert local is not None
            await sftp.put(str(local), path)
            return local.stat().st_size
        async with sftp.open(path, "wb") as f:
            await f.write(data, 0)
        return len(data)

    async def work(sftp: asyncssh.SFTPClient) -> int:
        if maker is not None:
            await maker.ensure(sftp, posixpath.dirname(remote_path))
        if not atomic:
            return await write(sftp, remote_path)
        directory, name = posixpath.split(remote_path)
        temporary = posixpath.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.partial")
        leftovers = _leftovers.setdefault(pool, set())
        try:
            size = await write(sftp, temporary)
            await _replace(sftp, temporary, remote_path)
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


async def _replace(sftp: asyncssh.SFTPClient, source: str, target: str) -> None:
    """Rename ``source`` over ``target``: atomically where the server can (OpenSSH's posix-rename)."""
    try:
        await sftp.posix_rename(source, target)
    except asyncssh.SFTPOpUnsupported:
        # SFTP's own rename refuses an existing target: the old file goes first, briefly absent.
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(target)
        await sftp.rename(source, target)


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
