"""The ``*_many`` calls' shared engine: one :class:`TransferResult` per file, errors included.

Every operation comes in two shapes:

* single-file coroutines taking the pool (``download_bytes``, ``download_file``,
  ``download_to_storage``, ``upload_file``), made to be one ``.iterate()`` item each: they raise an
  :class:`SFTPTransferError` naming the operation, the file and the connection id;
* ``*_many`` coroutines that run a whole list themselves, ``concurrency`` files at a time, and
  return one :class:`TransferResult` per file, in input order, with the error of each failed file
  instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from .._core import ItemRunner, RunOptions

__all__ = ["DEFAULT_CONCURRENCY", "TransferResult", "run_many"]

DEFAULT_CONCURRENCY = 64


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


class _ProgressFailed(BaseException):
    """Carries an error of the ``progress`` callback through the runner, which would otherwise
    take it for a failed item: it ends the call, as it always has."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


async def run_many(
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
        call, RunOptions(concurrency=concurrency, max_failures=None, max_items=None), is_async=True
    )
    try:
        return await runner.arun(keys)
    except _ProgressFailed as stop:
        error = stop.error
    raise error
