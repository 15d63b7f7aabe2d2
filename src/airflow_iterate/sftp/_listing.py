"""Listing the regular files under a remote directory, with their sizes."""

from __future__ import annotations

import asyncio
import posixpath
import stat
from dataclasses import dataclass
from typing import Any

import asyncssh

from .._core._validate import positive_int
from ._errors import SFTPFileNotFoundError, SFTPPoolUsageError
from ._pool import SFTPPool
from ._remote import on_server
from ._requests import Requests

__all__ = ["RemoteFile", "list_files"]

LIST_CONCURRENCY = 8


@dataclass(frozen=True)
class RemoteFile:
    """A regular file found by :func:`list_files`."""

    path: str
    size: int
    #: modification time, seconds since the epoch (when the server reports it)
    mtime: int | None = None


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
            entries = await on_server(pool, "listing", directory, _readdir, directory)
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
                        attrs = await on_server(pool, "stat", full, _stat, full)
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


async def _readdir(session: Requests, path: str) -> Any:
    return await session.sftp.readdir(path)


async def _stat(session: Requests, path: str) -> asyncssh.SFTPAttrs:
    return await session.sftp.stat(path)
