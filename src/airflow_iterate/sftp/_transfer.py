"""File transfers over an :class:`SFTPPool`, for DAG authors.

Two shapes of every operation:

* single-file coroutines taking the pool (``download_bytes``, ``download_file``,
  ``download_to_storage``, ``upload_file``), made to be one ``.iterate()`` item each: they raise an
  :class:`SFTPTransferError` naming the operation, the file and the connection id;
* ``*_many`` coroutines that run a whole list themselves, ``concurrency`` files at a time, and
  return one :class:`TransferResult` per file, in input order, with the error of each failed file
  instead of stopping at the first.

Latency, not bandwidth, bounds small files: a download is one round trip to open the file, one for
its size and first block (sent together), and the close is not waited for. Local files are
written under a temporary name and renamed, so a failed or cancelled download leaves no partial
file behind; retrying a failed file is always safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import posixpath
import stat
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import asyncssh

from .._core import ItemRunner, RunOptions
from .._core._validate import positive_int
from ._connect import reads_whole_files
from ._error_map import is_transport_error, transfer_error
from ._errors import SFTPFileNotFoundError, SFTPPoolError, SFTPPoolUsageError, SFTPTransferError
from ._pool import SFTPPool

__all__ = [
    "RemoteFile",
    "TransferResult",
    "download_bytes",
    "download_file",
    "download_many",
    "download_to_storage",
    "list_files",
    "upload_file",
    "upload_many",
]

log = logging.getLogger("airflow_iterate.sftp")

#: the first read of a download, sent together with the size request (at most what the server
#: says it accepts); a file larger than that is read again from there with parallel requests
FIRST_READ = 256 * 1024
#: local files larger than this are streamed by asyncssh rather than read or written in one piece
STREAM_THRESHOLD = 1024 * 1024
DEFAULT_CONCURRENCY = 64
LIST_CONCURRENCY = 8

T = TypeVar("T")
#: what an upload reads: a local path, or the bytes themselves
LocalSource: TypeAlias = "str | os.PathLike[str] | bytes"


@dataclass(frozen=True)
class RemoteFile:
    """A regular file found by :func:`list_files`."""

    path: str
    size: int
    #: modification time, seconds since the epoch (when the server reports it)
    mtime: int | None = None


@dataclass(frozen=True)
class TransferResult:
    """The outcome of one file of a ``*_many`` call."""

    #: the file on the SFTP server
    remote_path: str
    #: the local file or object written (downloads) or read (uploads); None for bytes in memory
    local: str | None = None
    #: bytes transferred
    size: int | None = None
    #: the content, for downloads into memory
    data: bytes | None = field(default=None, repr=False)
    #: why this file failed; None when it succeeded
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# -- on a borrowed client -------------------------------------------------------------------------


async def _on_server(pool: SFTPPool, operation: str, path: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(sftp)`` on a borrowed client; SFTP and transport errors come out named."""
    try:
        async with pool.client() as sftp:
            return await work(sftp)
    except SFTPPoolError:
        raise
    except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
        raise transfer_error(exc, operation, path, pool.conn_id) from exc


# -- listing --------------------------------------------------------------------------------------


async def list_files(
    pool: SFTPPool, path: str = ".", *, recursive: bool = True, concurrency: int = LIST_CONCURRENCY
) -> list[RemoteFile]:
    """The regular files under ``path`` (recursively by default), with sizes, sorted by path.

    Directories are read ``concurrency`` at a time. A symbolic link to a file is listed with its
    target's size; links to directories are not followed (no loops), dangling links are skipped.
    """
    positive_int("concurrency", concurrency, error=SFTPPoolUsageError)
    files: list[RemoteFile] = []
    level = [path]
    semaphore = asyncio.Semaphore(concurrency)

    async def read(directory: str) -> list[str]:
        async with semaphore:
            entries = await _on_server(pool, "listing", directory, lambda sftp: sftp.readdir(directory))
        subdirectories = []
        for entry in entries:
            if entry.filename in (".", ".."):
                continue
            full = posixpath.join(directory, entry.filename)
            attrs = entry.attrs
            kind = _kind(attrs)
            if kind == asyncssh.FILEXFER_TYPE_SYMLINK:
                try:
                    async with semaphore:
                        attrs = await _on_server(pool, "stat", full, functools.partial(_stat, path=full))
                except SFTPFileNotFoundError:
                    continue  # a dangling link names no file
                kind = _kind(attrs)
                if kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
                    continue
            if kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
                subdirectories.append(full)
            elif kind == asyncssh.FILEXFER_TYPE_REGULAR:
                files.append(RemoteFile(full, attrs.size or 0, attrs.mtime))
        return subdirectories

    while level:
        found = await asyncio.gather(*(read(d) for d in level))
        level = [d for sub in found for d in sub] if recursive else []
    files.sort(key=lambda f: f.path)
    return files


def _kind(attrs: asyncssh.SFTPAttrs) -> int:
    """The file type; SFTP v3 servers send it only inside the permission bits."""
    if attrs.type != asyncssh.FILEXFER_TYPE_UNKNOWN or attrs.permissions is None:
        return int(attrs.type)
    mode = attrs.permissions
    if stat.S_ISDIR(mode):
        return asyncssh.FILEXFER_TYPE_DIRECTORY
    if stat.S_ISREG(mode):
        return asyncssh.FILEXFER_TYPE_REGULAR
    if stat.S_ISLNK(mode):
        return asyncssh.FILEXFER_TYPE_SYMLINK
    return asyncssh.FILEXFER_TYPE_SPECIAL


async def _stat(sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPAttrs:
    return await sftp.stat(path)


# -- downloads ------------------------------------------------------------------------------------


async def download_bytes(pool: SFTPPool, remote_path: str) -> bytes:
    """The content of one remote file."""
    return await _on_server(pool, "download", remote_path, lambda sftp: _read(sftp, remote_path))


async def download_file(
    pool: SFTPPool, remote_path: str, local_dir: str | os.PathLike[str], *, remote_root: str | None = None
) -> Path:
    """Download one file into ``local_dir``; returns the local path.

    The file lands at ``local_dir/<its path relative to remote_root>`` (directories created), or
    at ``local_dir/<its name>`` without ``remote_root``. It is written under a temporary name and
    renamed, so a failure leaves nothing behind.
    """
    target = Path(local_dir) / _relative(remote_path, remote_root)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")

    async def work(sftp: asyncssh.SFTPClient) -> None:
        data = await _read(sftp, remote_path, limit=STREAM_THRESHOLD)
        if data is None:  # large: let asyncssh stream it with parallel reads
            await sftp.get(remote_path, str(partial))
        else:
            partial.write_bytes(data)

    try:
        await _on_server(pool, "download", remote_path, work)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return target


async def download_to_storage(
    pool: SFTPPool, remote_path: str, target: Any, *, remote_root: str | None = None
) -> Any:
    """Download one file to Airflow object storage; returns the ``ObjectStoragePath`` written.

    ``target`` is an ``ObjectStoragePath`` naming a directory (``s3://bucket/in/``,
    ``file:///data/in/``, ...); the file is written at ``target/<path relative to remote_root>``
    (or ``target/<its name>``). The object store's client is synchronous, so the write runs in a
    worker thread; the file passes through memory once.
    """
    destination = target.joinpath(*_relative(remote_path, remote_root).split("/"))
    data = await download_bytes(pool, remote_path)
    try:
        await asyncio.to_thread(_write_object, destination, data)
    except Exception as exc:
        raise SFTPTransferError(
            f"writing {remote_path!r} to {destination} failed: {type(exc).__name__}: {exc}",
            operation="download",
            path=remote_path,
            conn_id=pool.conn_id,
        ) from exc
    return destination


async def download_many(
    pool: SFTPPool,
    remote_paths: Iterable[str],
    *,
    to: Any = None,
    remote_root: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[TransferResult], object] | None = None,
) -> list[TransferResult]:
    """Download many files, ``concurrency`` at a time; one result per file, in input order.

    :param to: ``None`` keeps each file's bytes in its result's ``data``; a local directory
        (``str`` / ``Path``) or an ``ObjectStoragePath`` receives the files as
        :func:`download_file` / :func:`download_to_storage` would write them.
    :param progress: called with each result as it completes (on the event loop; keep it quick).

    Failed files have ``error`` set and do not stop the others; retry them by calling again with
    ``[r.remote_path for r in results if not r.ok]``.
    """
    positive_int("concurrency", concurrency, error=SFTPPoolUsageError)

    if to is None:

        async def one(path: str) -> TransferResult:
            data = await download_bytes(pool, path)
            return TransferResult(path, size=len(data), data=data)

    elif isinstance(to, str) or (isinstance(to, os.PathLike) and not hasattr(to, "protocol")):
        # (an ObjectStoragePath is path-like too on some Airflow versions: it has a protocol)

        async def one(path: str) -> TransferResult:
            local = await download_file(pool, path, to, remote_root=remote_root)
            return TransferResult(path, local=str(local), size=local.stat().st_size)

    else:

        async def one(path: str) -> TransferResult:
            written = await download_to_storage(pool, path, to, remote_root=remote_root)
            return TransferResult(path, local=str(written))

    return await _run_many(
        list(remote_paths), one, lambda path, exc: TransferResult(path, error=exc), concurrency, progress
    )


# -- uploads --------------------------------------------------------------------------------------


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
    return await _run_many(
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
            _in_background(_remove_quietly(sftp, temporary, leftovers))
            raise
        for leftover in list(leftovers):
            leftovers.discard(leftover)
            await _remove_quietly(sftp, leftover, leftovers)
        return size

    return await _on_server(pool, "upload", remote_path, work)


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


# -- internals ------------------------------------------------------------------------------------


# Strong references to background requests nobody waits for (asyncio keeps only weak ones).
_background: set[asyncio.Task[None]] = set()


def _in_background(request: Awaitable[None]) -> None:
    task = asyncio.ensure_future(request)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _read(sftp: asyncssh.SFTPClient, path: str, *, limit: int | None = None) -> Any:
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
        _in_background(_close_quietly(f))
    # Larger than one block: read the rest with asyncssh's parallel requests.
    async with sftp.open(path, "rb") as rest:
        remaining = await rest.read(size - len(first) if size is not None else -1, len(first))
    return first + remaining


async def _close_quietly(f: asyncssh.SFTPClientFile) -> None:
    try:
        await f.close()
    except (asyncssh.Error, OSError) as exc:  # the connection went away: so did the handle
        log.debug("closing a remote file failed: %s", exc)


def _write_object(destination: Any, data: bytes) -> None:
    # Object stores have no directories to create, and some refuse to; local paths need them.
    with contextlib.suppress(Exception):
        destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(data)


def _relative(remote_path: str, remote_root: str | None) -> str:
    if remote_root is None:
        name = posixpath.basename(remote_path.rstrip("/"))
        if not name or name in (".", ".."):
            raise SFTPPoolUsageError(f"cannot name a local file after the remote path {remote_path!r}")
        return name
    relative = posixpath.relpath(posixpath.normpath(remote_path), posixpath.normpath(remote_root))
    if relative == "." or relative == ".." or relative.startswith("../"):
        raise SFTPPoolUsageError(f"remote path {remote_path!r} is not under remote_root {remote_root!r}")
    return relative


class _ProgressFailed(BaseException):
    """Carries an error of the ``progress`` callback through the runner, which would otherwise
    take it for a failed item: it ends the call, as it always has."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


async def _run_many(
    keys: Sequence[str],
    one: Callable[[str], Awaitable[TransferResult]],
    failed: Callable[[str, BaseException], TransferResult],
    concurrency: int,
    progress: Callable[[TransferResult], object] | None,
) -> list[TransferResult]:
    """``one(key)`` for every key, ``concurrency`` at a time on the core's runner; results in
    input order, errors become failed results."""

    async def call(index: int, key: str) -> TransferResult:
        try:
            result = await one(key)
        except Exception as exc:
            result = failed(key, exc)
        if progress is not None:
            try:
                progress(result)
            except Exception as exc:
                raise _ProgressFailed(exc) from exc
        return result

    runner: ItemRunner[str, TransferResult] = ItemRunner(
        call, RunOptions(concurrency=concurrency, max_failures=None), is_async=True
    )
    try:
        return await runner.arun(keys)
    except _ProgressFailed as stop:
        error = stop.error
    raise error
