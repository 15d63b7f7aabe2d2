"""SFTP for ``.iterate()``: thousands of file operations over a few multiplexed SSH connections.

Needs the ``sftp`` extra (``pip install airflow-iterate[sftp]``: asyncssh and the Airflow sftp
provider) and an Airflow connection of type ``sftp``, read the way the provider's hooks read it
(host key checking on by default).

Async items (one event loop for the whole task run)::

    from airflow_iterate.sftp import SFTPPool, download_to_storage

    @task
    async def fetch(path: str) -> str:
        pool = SFTPPool.shared("my_sftp")  # one pool per task run, shared by all items
        return str(await download_to_storage(pool, path, ObjectStoragePath("s3://bucket/in/")))

    fetch.iterate(path=list_paths(), concurrency=128)

or all at once in one task: ``async with SFTPPool("my_sftp") as pool:`` then
:func:`list_files`, :func:`download_many`, :func:`upload_many` (a result per file, errors included).

Sync items (a thread pool): :class:`SyncSFTPPool` gives each thread its own paramiko client.

Layout::

    _settings.py     reading the Airflow connection (in a thread) into ConnectionSettings
    _connect.py      connecting with asyncssh: SSH connections, SFTP sessions, retried connects
    _pool.py         SFTPPool: its options, shared(), client(), aclose()
    _lending.py      how the pool lends sessions: FIFO waiters, picking, growth, the expiry timer
    _holders.py      a holder per connection and per session: state, health checks, retiring, closing
    _statistics.py   PoolStatistics and the running totals behind it
    _sync_pool.py    SyncSFTPPool: one paramiko client per thread
    _listing.py      list_files: the regular files under a directory, with sizes
    _download.py     downloads into memory, local files or object storage; one file or many
    _upload.py       uploads of local files or bytes, atomic by default; one file or many
    _many.py         TransferResult and the *_many calls' engine (the core's ItemRunner)
    _remote.py       work on a borrowed session: errors named, small files in two round trips
    _requests.py     the request layer: requests batched per pass of the event loop, no object per file
    _errors.py       the exceptions (all are airflow_iterate.IterateError)
    _error_map.py    which exception a failure becomes, with a message saying what to fix
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any as _Any

from .._public import present_as as _present_as
from ._download import download_bytes, download_file, download_many, download_to_storage
from ._errors import (
    SFTPAcquireTimeoutError,
    SFTPConnectError,
    SFTPConnectionLostError,
    SFTPFileNotFoundError,
    SFTPPermissionError,
    SFTPPoolClosedError,
    SFTPPoolError,
    SFTPPoolUsageError,
    SFTPTransferError,
)
from ._listing import RemoteFile, list_files
from ._many import TransferResult
from ._pool import SFTPPool
from ._statistics import PoolStatistics
from ._sync_pool import SyncPoolStatistics, SyncSFTPPool
from ._upload import upload_file, upload_many

__all__ = [
    "PoolStatistics",
    "RemoteFile",
    "SFTPAcquireTimeoutError",
    "SFTPConnectError",
    "SFTPConnectionLostError",
    "SFTPFileNotFoundError",
    "SFTPPermissionError",
    "SFTPPool",
    "SFTPPoolClosedError",
    "SFTPPoolError",
    "SFTPPoolUsageError",
    "SFTPTransferError",
    "SyncPoolStatistics",
    "SyncSFTPPool",
    "TransferResult",
    "download_bytes",
    "download_file",
    "download_many",
    "download_to_storage",
    "list_files",
    "upload_file",
    "upload_many",
]

_present_as(__name__, globals(), __all__)

#: old public names, still importable for a while
_DEPRECATED = {"SFTPAcquireTimeout": "SFTPAcquireTimeoutError"}


def __getattr__(name: str) -> _Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        _warnings.warn(
            f"airflow_iterate.sftp.{name} is deprecated; use {new} (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
