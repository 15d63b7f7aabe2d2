"""Downloads: into memory, into a local directory, into Airflow object storage; one file or many.

Every download reads the remote file through one handle (``_remote.read_file``): a remote link is
followed by the server, as ``open()`` does, so the result is always a regular file with the bytes
of the file the link names, never a link. Local files are written under a temporary name (created
exclusively, never through a link) and renamed, so a failed or cancelled download leaves no
partial file behind and retrying a failed file is always safe. A local link where a download
would write (the file itself or a directory under ``local_dir``) is refused, never followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._core._validate import positive_int
from ._error_map import _UnusableFile, transfer_error
from ._errors import SFTPPoolUsageError, SFTPTransferError
from ._many import DEFAULT_CONCURRENCY, TransferResult, run_many
from ._pool import SFTPPool
from ._remote import on_server, read_file

__all__ = ["download_bytes", "download_file", "download_many", "download_to_storage"]


async def download_bytes(pool: SFTPPool, remote_path: str) -> bytes:
    """The content of one remote file."""
    data: bytes = await on_server(pool, "download", remote_path, read_file, remote_path)
    return data


async def download_file(
    pool: SFTPPool, remote_path: str, local_dir: str | os.PathLike[str], *, remote_root: str | None = None
) -> Path:
    """Download one file into ``local_dir``; returns the local path.

    The file lands at ``local_dir/<its path relative to remote_root>`` (directories created), or
    at ``local_dir/<its name>`` without ``remote_root``. It is written under a temporary name and
    renamed, so a failure leaves nothing behind. A remote link gives a regular file with the bytes
    of the file it names; a local link at the target or on the way to it is refused.
    """
    relative = _relative(remote_path, remote_root)
    try:
        target = _local_target(Path(local_dir), relative)
    except _UnusableFile as exc:
        raise transfer_error(exc, "download", remote_path, pool.conn_id) from None
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    # O_EXCL|O_NOFOLLOW: a new file of this download's own, whatever was planted under the name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(partial, flags, 0o666)
    try:
        try:
            await on_server(
                pool,
                "download",
                remote_path,
                read_file,
                remote_path,
                lambda offset, data: os.pwrite(fd, data, offset),
            )
        finally:
            os.close(fd)
        if target.is_symlink():  # appeared meanwhile
            raise transfer_error(_link_in_the_way(target), "download", remote_path, pool.conn_id)
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

    Distinct remote files that would be written under the same local name (``a/x.csv`` and
    ``b/x.csv`` without ``remote_root``) are not downloaded: each gets an error result naming the
    others, and nothing is overwritten. ``remote_root`` keeps their directories apart.

    Failed files have ``error`` set and do not stop the others; retry them by calling again with
    ``[r.remote_path for r in results if not r.ok]``.
    """
    positive_int("concurrency", concurrency, error=SFTPPoolUsageError)
    paths = list(remote_paths)
    collisions: dict[str, str] = {}

    if to is None:

        async def one(path: str) -> TransferResult:
            data = await download_bytes(pool, path)
            return TransferResult(path, size=len(data), data=data)

    elif isinstance(to, str) or (isinstance(to, os.PathLike) and not hasattr(to, "protocol")):
        # (an ObjectStoragePath is path-like too on some Airflow versions: it has a protocol)
        collisions = _collisions(paths, remote_root)

        async def one(path: str) -> TransferResult:
            _refuse_collision(pool, path, collisions)
            local = await download_file(pool, path, to, remote_root=remote_root)
            return TransferResult(path, local=str(local), size=local.stat().st_size)

    else:
        collisions = _collisions(paths, remote_root)

        async def one(path: str) -> TransferResult:
            _refuse_collision(pool, path, collisions)
            written = await download_to_storage(pool, path, to, remote_root=remote_root)
            return TransferResult(path, local=str(written))

    return await run_many(
        paths, one, lambda path, exc: TransferResult(path, error=exc), concurrency, progress
    )


def _collisions(paths: list[str], remote_root: str | None) -> dict[str, str]:
    """Remote path -> what it collides with, for distinct remote files that would be written under
    the same local name (``a/x.csv`` and ``b/x.csv`` without ``remote_root``)."""
    by_name: dict[str, set[str]] = {}
    for path in paths:
        try:
            name = _relative(path, remote_root)
        except SFTPPoolUsageError:
            continue  # that file fails on its own
        by_name.setdefault(name, set()).add(posixpath.normpath(path))
    colliding: dict[str, str] = {}
    for path in paths:
        try:
            name = _relative(path, remote_root)
        except SFTPPoolUsageError:
            continue
        others = sorted(by_name[name] - {posixpath.normpath(path)})
        if others:
            colliding[path] = (
                f"it and {', '.join(repr(o) for o in others)} would be written to the same local "
                f"file {name!r}; none of them was downloaded"
                + ("" if remote_root is not None else " (pass remote_root to keep their directories)")
            )
    return colliding


def _refuse_collision(pool: SFTPPool, path: str, collisions: dict[str, str]) -> None:
    if path in collisions:
        raise transfer_error(_UnusableFile(collisions[path]), "download", path, pool.conn_id)


def _local_target(local_dir: Path, relative: str) -> Path:
    """``local_dir/relative``, its directories created; :class:`_UnusableFile` when a local link is
    in the way (under ``local_dir``), so that a download never writes outside ``local_dir``."""
    local_dir.mkdir(parents=True, exist_ok=True)
    current = local_dir
    *directories, name = relative.split("/")
    for part in directories:
        current = current / part
        if current.is_symlink():
            raise _link_in_the_way(current)
        with contextlib.suppress(FileExistsError):
            current.mkdir()
    target = current / name
    if target.is_symlink():
        raise _link_in_the_way(target)
    return target


def _link_in_the_way(path: Path) -> _UnusableFile:
    return _UnusableFile(
        f"the local path {str(path)!r} is a symbolic link; a download never writes through one "
        "(remove it, or download into another directory)"
    )


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
