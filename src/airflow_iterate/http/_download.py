"""Streaming a large answer to a local file or to Airflow object storage, never whole in memory.

As the SFTP downloads do: the body is written to a hidden ``.<name>.<random>.partial`` file in the
target directory, created exclusively, and renamed into place once complete, so nothing partial
ever stands under the file's name and a failed or cancelled download leaves nothing behind.

Links never take a download out of its directory: every directory below ``local_dir`` is opened
without following links (``O_NOFOLLOW``), the partial file is created and renamed relative to the
opened directory (``openat``, ``renameat``), and a link at the target is refused (a rename would
replace the link itself, never write through it). ``local_dir`` itself is the caller's choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .._core import current_item, is_permanent_error
from ._error_map import classify, transport_error
from ._errors import HTTPClientUsageError, HTTPDownloadError
from ._redact import Masker, redact_url, url_secrets
from ._settings import join_url

if TYPE_CHECKING:
    from ._client import HTTPClient
    from ._response import HTTPStream

__all__ = ["download_file", "download_to_storage"]

CHUNK = 256 * 1024
_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PARTIAL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


async def download_file(
    client: HTTPClient,
    url: str,
    local_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    params: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Path:
    """Stream ``GET url`` into ``local_dir/name``; returns the path written.

    :param name: the file's name, relative to ``local_dir`` (``"2026/12/export.csv"`` creates the
        directories); by default the last segment of the URL's path. Never absolute, never ``..``.

    The request is retried as any (429, 503, a refused connection) until its answer starts; a
    failure while the body is read fails the call (the item's retries start it over), the partial
    file removed. A body shorter than its ``Content-Length`` is an error, never a file.
    """
    relative = _name(url, name)
    target_text = str(Path(local_dir) / relative)
    *directories, filename = relative.split("/")
    partial = f".{filename}.{uuid.uuid4().hex[:12]}.partial"
    try:
        directory_fd = _open_directories(Path(local_dir), directories, client, url, target_text)
    except OSError as exc:
        raise _local_os_error(client, url, target_text, exc) from exc
    try:
        try:
            fd = os.open(partial, _PARTIAL_FLAGS, 0o666, dir_fd=directory_fd)
        except OSError as exc:
            raise _local_os_error(client, url, target_text, exc) from exc
        try:
            try:
                async with client.stream("GET", url, params=params, headers=headers) as stream:
                    await _write_all(stream, lambda data: _write(fd, data), client, url, target_text)
            finally:
                os.close(fd)
            _refuse_link(filename, directory_fd, client, url, target_text)
            try:
                os.replace(partial, filename, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
            except OSError as exc:
                raise _local_os_error(client, url, target_text, exc) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial, dir_fd=directory_fd)
            raise
    finally:
        os.close(directory_fd)
    return Path(target_text)


async def download_to_storage(
    client: HTTPClient,
    url: str,
    target: Any,
    *,
    name: str | None = None,
    params: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Stream ``GET url`` into Airflow object storage; returns the ``ObjectStoragePath`` written.

    ``target`` is an ``ObjectStoragePath`` naming a directory (``s3://bucket/in/``,
    ``file:///data/in/``); the object is ``target/name`` (``name`` as for :func:`download_file`).
    The body goes to a hidden partial object beside it, chunk by chunk (the object store's client
    is synchronous: each write runs in a worker thread), which is renamed into place once complete
    and removed on failure. A ``file://`` target is written by :func:`download_file`, with its
    guarantees about links.
    """
    relative = _name(url, name)
    if str(getattr(target, "protocol", "")) in ("file", "local"):
        written = await download_file(
            client, url, str(target.path), name=relative, params=params, headers=headers
        )
        return target.joinpath(*relative.split("/")) if written else target
    destination = target.joinpath(*relative.split("/"))
    partial = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}.partial"
    target_text = str(destination)
    handle: Any = None
    try:
        async with client.stream("GET", url, params=params, headers=headers) as stream:
            handle = await asyncio.to_thread(_open_object, partial)

            async def write(data: bytes) -> None:
                await asyncio.to_thread(handle.write, data)

            await _write_all(stream, write, client, url, target_text)
            await asyncio.to_thread(handle.close)
            handle = None
        await asyncio.to_thread(partial.rename, destination)
    except BaseException as exc:
        if handle is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(handle.close)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(partial.unlink)
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
            what = f"writing it failed: {type(exc).__name__}: {exc}"
            raise _local_error(client, url, target_text, what, permanent=False) from exc
        raise
    return destination


async def _write_all(stream: HTTPStream, write: Any, client: HTTPClient, url: str, target: str) -> None:
    received = 0
    chunks = stream.iter_chunks(CHUNK)
    while True:
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            raise _transport(client, exc, failure, url) from exc
        try:
            result = write(chunk)
            if asyncio.iscoroutine(result):
                await result
        except OSError as exc:
            raise _local_error(
                client, url, target, f"writing it failed: {type(exc).__name__}: {exc}", permanent=False
            ) from exc
        received += len(chunk)
    expected = stream.content_length
    if expected is not None and received != expected:
        raise _local_error(
            client,
            url,
            target,
            f"the answer ended after {received:,} of its {expected:,} bytes; nothing was written",
            permanent=False,
        )


def _transport(client: HTTPClient, exc: BaseException, failure: Any, url: str) -> Exception:
    opened = client._holder.opened
    full = url if opened is None else join_url(opened.settings.base_url, url)
    mask = opened.mask.with_url(full) if opened is not None else Masker(url_secrets(full))
    read_timeout = opened.settings.read_timeout if opened is not None else None
    return transport_error(
        exc, failure, "GET", full, conn_id=client.conn_id, mask=mask, attempts=1, timeout=read_timeout
    )


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _open_object(path: Any) -> Any:
    # Object stores have no directories to create, and some refuse to; local paths need them.
    with contextlib.suppress(Exception):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _name(url: str, name: str | None) -> str:
    if name is None:
        path = urlsplit(url).path if "://" in url[:16] else url.split("?", 1)[0].split("#", 1)[0]
        name = unquote(posixpath.basename(path.rstrip("/")))
        if not name or name in (".", ".."):
            raise HTTPClientUsageError(
                f"cannot name a local file after the URL {redact_url(url)!r}; pass name="
            )
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\x00" in name:
        raise HTTPClientUsageError(
            f"name must be a relative path without '.' or '..' components, got {name!r}"
        )
    return name


def _open_directories(
    local_dir: Path, directories: list[str], client: HTTPClient, url: str, target: str
) -> int:
    """A descriptor of ``local_dir/directories...``, each level made if missing and opened without
    following a link."""
    local_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(local_dir, _DIRECTORY_FLAGS)
    try:
        current = local_dir
        for part in directories:
            current = current / part
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=fd)
            try:
                inner = os.open(part, _DIRECTORY_FLAGS | _NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _link_in_the_way(client, url, target, current) from None
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse_link(filename: str, directory_fd: int, client: HTTPClient, url: str, target: str) -> None:
    try:
        found = os.stat(filename, dir_fd=directory_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        raise _link_in_the_way(client, url, target, Path(target))
    if stat.S_ISDIR(found.st_mode):
        raise _local_error(client, url, target, "a directory stands under that name; nothing was written")


def _link_in_the_way(client: HTTPClient, url: str, target: str, path: Path) -> HTTPDownloadError:
    return _local_error(
        client,
        url,
        target,
        f"the local path {str(path)!r} is a symbolic link; a download never writes through one "
        "(remove it, or download into another directory)",
    )


def _local_os_error(client: HTTPClient, url: str, target: str, exc: OSError) -> HTTPDownloadError:
    """A local file operation failed: permanent when the error is (a refused permission), not
    otherwise (a full disk)."""
    what = f"writing it failed: {type(exc).__name__}: {exc}"
    return _local_error(client, url, target, what, permanent=is_permanent_error(exc))


def _local_error(
    client: HTTPClient, url: str, target: str, what: str, *, permanent: bool = True
) -> HTTPDownloadError:
    item = current_item()
    opened = client._holder.opened
    full = url if opened is None else join_url(opened.settings.base_url, url)
    mask = opened.mask.with_url(full) if opened is not None else Masker(url_secrets(full))
    shown = mask(redact_url(full))
    for_item = f" (for {item})" if item else ""
    return HTTPDownloadError(
        mask(f"download of GET {shown} to {target!r} failed{for_item}: {what} [{client.conn_id}]"),
        target=target,
        method="GET",
        url=shown,
        conn_id=client.conn_id,
        item=item,
        permanent=permanent,
    )
