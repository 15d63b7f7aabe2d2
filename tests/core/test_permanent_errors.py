"""Permanent errors are not retried (unless asked), and retries are logged without flooding."""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import urllib.error
from collections import Counter
from typing import Any

import asyncssh
import httpx
import paramiko
import pytest
import requests

from airflow_iterate._core import (
    ItemRunner,
    ItemsFailedError,
    IterateUsageError,
    RunOptions,
    RunStatistics,
    is_permanent_error,
)
from airflow_iterate._core._monitor import Monitor
from airflow_iterate._core._permanence import is_permanent_class
from airflow_iterate._core._retrylog import LOGGED_INDIVIDUALLY, RetryLog
from tests.core._observer import RecordingObserver

# -- which errors are permanent -----------------------------------------------------------------


def _httpx_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://api.example/v1/thing")
    return httpx.HTTPStatusError("status", request=request, response=httpx.Response(status, request=request))


def _requests_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Client Error", response=response)


def _urllib_error(status: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("https://api.example/", status, "status", hdrs=None, fp=None)  # type: ignore[arg-type]


def _aiohttp_error(status: int) -> Exception:
    # aiohttp is not installed here: a class with its module and name stands in for it, as the
    # classification goes by those alone and reads only .status.
    cls = type("ClientResponseError", (Exception,), {"__module__": "aiohttp.client_exceptions"})
    error = cls("status")
    error.status = status  # type: ignore[attr-defined]
    return error


class _FakeKey:
    def get_name(self) -> str:
        return "ssh-ed25519"

    def get_base64(self) -> str:
        return "AAAA"


PERMANENT: list[BaseException] = [
    FileNotFoundError(errno.ENOENT, "No such file or directory", "/in/a.csv"),
    OSError(errno.ENOENT, "built from the errno"),  # Python makes it a FileNotFoundError
    PermissionError(errno.EACCES, "Permission denied"),
    OSError(errno.EPERM, "Operation not permitted"),
    IsADirectoryError(errno.EISDIR, "Is a directory"),
    NotADirectoryError(errno.ENOTDIR, "Not a directory"),
    NotImplementedError("no XML 1.1"),
    ModuleNotFoundError("No module named 'lxml'"),
    IterateUsageError("wrong call"),
    asyncssh.SFTPNoSuchFile("No such file"),
    asyncssh.SFTPNoSuchPath("No such path"),
    asyncssh.SFTPPermissionDenied("Permission denied"),
    asyncssh.SFTPOpUnsupported("not supported"),
    asyncssh.SFTPFileIsADirectory("a directory"),
    asyncssh.SFTPNotADirectory("not a directory"),
    asyncssh.SFTPError(2, "a server's no-such-file as the base class"),
    asyncssh.PermissionDenied("Permission denied"),
    asyncssh.HostKeyNotVerifiable("Host key is not trusted"),
    asyncssh.KeyImportError("Invalid private key"),
    paramiko.AuthenticationException("Authentication failed."),
    paramiko.BadAuthenticationType("Bad authentication type", ["publickey"]),
    paramiko.BadHostKeyException("sftp.example", _FakeKey(), _FakeKey()),  # type: ignore[arg-type]
    *(_httpx_error(status) for status in (400, 401, 403, 404, 410, 422)),
    _requests_error(404),
    _urllib_error(403),
    _aiohttp_error(404),
]

TRANSIENT: list[BaseException] = [
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    TimeoutError("timed out"),
    asyncio.TimeoutError(),
    BrokenPipeError(errno.EPIPE, "Broken pipe"),
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EMFILE, "Too many open files"),
    FileExistsError(errno.EEXIST, "File exists"),  # concurrent items creating one directory
    ValueError("Expecting ',' delimiter: line 1 column 8191"),  # a truncated response, or a bug
    TypeError("'NoneType' object is not subscriptable"),
    KeyError("items"),
    UnicodeDecodeError("utf-8", b"\xe2\x82", 0, 2, "unexpected end of data"),
    ImportError("cannot import name 'x' from partially initialized module 'y'"),
    RuntimeError("something else"),
    asyncssh.SFTPFailure("Failure"),
    asyncssh.SFTPConnectionLost("Connection lost"),
    asyncssh.SFTPEOFError(),
    asyncssh.SFTPLockConflict("locked"),
    asyncssh.SFTPNoSpaceOnFilesystem("full"),
    asyncssh.ConnectionLost("Connection lost"),
    # a disconnect's code 2 is "protocol error", not SFTP's "no such file": told apart by class
    asyncssh.DisconnectError(2, "Protocol error"),
    asyncssh.ChannelOpenError(2, "Connect failed"),
    paramiko.SSHException("Error reading SSH protocol banner"),
    *(_httpx_error(status) for status in (408, 423, 425, 429, 500, 502, 503)),
    _requests_error(429),
    _requests_error(503),
    requests.HTTPError("no response attached"),
    requests.ConnectionError("Connection aborted"),
    _urllib_error(429),
    _urllib_error(500),
    _aiohttp_error(503),
    httpx.ConnectError("All connection attempts failed"),
]


@pytest.mark.parametrize("error", PERMANENT, ids=repr)
def test_permanent_errors(error: BaseException) -> None:
    assert is_permanent_error(error)


@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_transient_errors(error: BaseException) -> None:
    assert not is_permanent_error(error)


def test_an_iterate_permanent_attribute_decides() -> None:
    class NotThereYet(FileNotFoundError):
        iterate_permanent = False  # the file is still being written: worth waiting for

    class Rejected(ValueError):
        iterate_permanent = True  # the partner refused this record for good

    assert not is_permanent_error(NotThereYet("in.csv"))
    assert is_permanent_error(Rejected("bad record"))
    # on an instance, before raising it
    error = ConnectionError("the partner closed our account")
    error.iterate_permanent = True  # type: ignore[attr-defined]
    assert is_permanent_error(error)
    missing = FileNotFoundError("the upstream writes it any minute")
    missing.iterate_permanent = False  # type: ignore[attr-defined]
    assert not is_permanent_error(missing)
    # anything but a bool is no verdict
    odd = KeyError("x")
    odd.iterate_permanent = "yes"  # type: ignore[attr-defined]
    assert not is_permanent_error(odd)


def test_the_cause_of_a_wrapped_error_is_not_followed() -> None:
    class NotThereYet(Exception):
        pass

    try:
        try:
            raise FileNotFoundError("in.csv")
        except FileNotFoundError as missing:
            raise NotThereYet("in.csv is not there yet") from missing
    except NotThereYet as wrapped:
        assert not is_permanent_error(wrapped)


def test_permanent_classes() -> None:
    assert is_permanent_class(FileNotFoundError)
    assert is_permanent_class(asyncssh.PermissionDenied)
    assert is_permanent_class(paramiko.AuthenticationException)
    assert not is_permanent_class(OSError)  # only some are
    assert not is_permanent_class(asyncssh.SFTPError)  # depends on its code
    assert not is_permanent_class(httpx.HTTPStatusError)  # depends on its status
    assert not is_permanent_class(ConnectionError)

    class StillBeingWritten(FileNotFoundError):
        iterate_permanent = False

    assert not is_permanent_class(StillBeingWritten)


def test_an_item_retry_on_class_that_is_never_retried_is_refused() -> None:
    with pytest.raises(IterateUsageError, match=r"item_retry_on names FileNotFoundError, a permanent error"):
        RunOptions(item_retries=3, item_retry_on=(ConnectionError, FileNotFoundError))
    with pytest.raises(IterateUsageError, match=r"PermissionError, FileNotFoundError, permanent errors"):
        RunOptions(item_retries=3, item_retry_on=(PermissionError, FileNotFoundError))
    # with the opt-in it is what was meant; without retries it means nothing
    RunOptions(item_retries=3, item_retry_on=FileNotFoundError, item_retry_permanent=True)
    RunOptions(item_retries=0, item_retry_on=FileNotFoundError)
    RunOptions(item_retries=3, item_retry_on=OSError)  # only some OSErrors are permanent


@pytest.mark.parametrize("bad", [1, 0, "true", None])
def test_item_retry_permanent_is_a_bool(bad: object) -> None:
    with pytest.raises(IterateUsageError, match="item_retry_permanent must be True or False"):
        RunOptions(item_retry_permanent=bad)  # type: ignore[arg-type]


# -- the runner's decisions -----------------------------------------------------------------------


def _runner(body: Any, options: RunOptions, *, is_async: bool, **kwargs: Any) -> ItemRunner[str, str]:
    async def acall(index: int, item: str) -> str:
        return str(body(item))

    call: Any = acall if is_async else (lambda index, item: str(body(item)))
    return ItemRunner(call, options, is_async=is_async, **kwargs)


@pytest.mark.parametrize("is_async", [True, False])
def test_a_permanent_error_fails_its_item_on_the_first_attempt(is_async: bool) -> None:
    calls: Counter[str] = Counter()

    def body(path: str) -> str:
        calls[path] += 1
        if path == "missing.csv":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if path == "flaky.csv" and calls[path] == 1:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return path.upper()

    observer = RecordingObserver()
    runner = _runner(
        body,
        RunOptions(concurrency=2, item_retries=3, item_retry_delay=0, max_failures=None),
        is_async=is_async,
        observer=observer,
    )
    assert runner.run(["missing.csv", "flaky.csv", "ok.csv"]) == [None, "FLAKY.CSV", "OK.CSV"]
    assert calls == {"missing.csv": 1, "flaky.csv": 2, "ok.csv": 1}
    assert runner.statistics().retried == 1
    (failure,) = runner.failures
    assert failure.index == 0 and isinstance(failure.exception, FileNotFoundError)
    notes = observer.retry_notes
    assert len(notes) == 2, notes
    (not_retried,) = [n for n in notes if "not retried" in n]
    assert not_retried == (
        "item 0 (input 'missing.csv') failed with FileNotFoundError: [Errno 2] No such file or "
        "directory: 'missing.csv'; not retried: the error is permanent "
        "(item_retry_permanent=True retries it)"
    )
    (retry,) = [n for n in notes if "retry 1/3" in n]
    assert retry.startswith(
        "item 1 (input 'flaky.csv') failed with ConnectionResetError: [Errno 104] Connection reset by peer; "
        "retry 1/3 in "
    )


@pytest.mark.parametrize("is_async", [True, False])
def test_item_retry_permanent_retries_permanent_errors_too(is_async: bool) -> None:
    calls: Counter[str] = Counter()

    def body(path: str) -> str:
        calls[path] += 1
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    observer = RecordingObserver()
    runner = _runner(
        body,
        RunOptions(concurrency=1, item_retries=3, item_retry_delay=0, item_retry_permanent=True),
        is_async=is_async,
        observer=observer,
    )
    with pytest.raises(ItemsFailedError, match="FileNotFoundError"):
        runner.run(["missing.csv"])
    assert calls == {"missing.csv": 4}
    assert runner.statistics().retried == 3
    assert [n.rsplit(";", 1)[1].split(" in ")[0] for n in observer.retry_notes] == [
        " retry 1/3",
        " retry 2/3",
        " retry 3/3",
    ]


def test_errors_outside_item_retry_on_are_neither_retried_nor_explained() -> None:
    calls: Counter[str] = Counter()

    def body(item: str) -> str:
        calls[item] += 1
        raise (KeyError if item == "bug" else FileNotFoundError)(item)

    observer = RecordingObserver()
    runner = _runner(
        body,
        RunOptions(item_retries=3, item_retry_delay=0, item_retry_on=ConnectionError, max_failures=None),
        is_async=True,
        observer=observer,
    )
    assert runner.run(["bug", "gone"]) == [None, None]
    assert calls == {"bug": 1, "gone": 1}
    # not worth retrying by the author's own choice: nothing to explain
    assert observer.retry_notes == []


def test_without_item_retries_nothing_is_logged() -> None:
    observer = RecordingObserver()

    def body(item: str) -> str:
        raise FileNotFoundError(item)

    runner = _runner(body, RunOptions(max_failures=None), is_async=True, observer=observer)
    assert runner.run(["a", "b"]) == [None, None]
    assert observer.retry_notes == []


# -- retry lines: bounded, redacted, never in the way -------------------------------------------


def _log(emit: Any, **kwargs: Any) -> RetryLog:
    options: dict[str, Any] = {
        "retries": 3,
        "describe": repr,
        "describe_error": lambda e: f"{type(e).__name__}: {e}",
    }
    return RetryLog(emit, **{**options, **kwargs})


def test_the_first_retries_get_a_line_each_then_one_summary_per_interval() -> None:
    lines: list[str] = []
    log = _log(lines.append, individually=3)
    for n in range(5):
        log.retrying(n, f"f{n}.csv", ConnectionResetError("reset"), 1, 1.25)
    assert lines == [
        f"item {n} (input 'f{n}.csv') failed with ConnectionResetError: reset; retry 1/3 in 1.2s"
        for n in range(3)
    ]
    log.summarize()  # the monitor's interval
    assert lines[3:] == [
        "2 more item retries since the last line; most recent retry: item 4 (input 'f4.csv') failed "
        "with ConnectionResetError: reset; retry 1/3 in 1.2s"
    ]
    log.summarize()  # nothing new: no line
    assert len(lines) == 4
    for n in range(230):
        log.retrying(n, f"f{n}.csv", TimeoutError("slow"), 2, 2.0)
    log.not_retried(7, "gone.csv", FileNotFoundError("gone.csv"))
    log.summarize()
    assert len(lines) == 6  # 230 retries: one line; the first permanent error: a line of its own
    assert lines[4].endswith(
        "failed with FileNotFoundError: gone.csv; not retried: the error is permanent "
        "(item_retry_permanent=True retries it)"
    )
    assert lines[5].startswith("230 more item retries since the last line; most recent retry: item 229 ")


def test_permanent_errors_not_retried_are_counted_apart() -> None:
    lines: list[str] = []
    log = _log(lines.append, individually=2)
    for n in range(5):
        log.not_retried(n, f"f{n}", FileNotFoundError(f"f{n}"))
    log.retrying(9, "x", TimeoutError("t"), 1, 0.5)
    assert len(lines) == 3  # two permanent, and the first retry
    log.summarize()
    assert lines[3] == (
        "3 more permanent errors not retried since the last line; most recent not retried: item 4 "
        "(input 'f4') failed with FileNotFoundError: f4; not retried: the error is permanent "
        "(item_retry_permanent=True retries it)"
    )


def test_retry_lines_show_items_and_errors_only_as_described() -> None:
    lines: list[str] = []
    log = _log(
        lines.append,
        individually=1,
        describe=lambda item: "{'token': '***'}",
        describe_error=lambda exc: f"{type(exc).__name__}: ***",
    )
    for n in range(3):
        log.retrying(n, {"token": "s3cr3t"}, ConnectionError("GET /?token=s3cr3t failed"), 1, 1.0)
    log.not_retried(3, {"token": "s3cr3t"}, PermissionError("s3cr3t refused"))
    log.summarize()
    assert len(lines) == 3
    assert not [line for line in lines if "s3cr3t" in line]


def test_a_failing_log_or_description_never_fails_the_item() -> None:
    errors: list[BaseException] = []

    def broken_emit(line: str) -> None:
        raise OSError("log handler gone")

    log = _log(broken_emit, individually=1, on_error=errors.append)
    log.retrying(0, "a", TimeoutError("t"), 1, 1.0)
    log.retrying(1, "b", TimeoutError("t"), 1, 1.0)
    log.summarize()
    assert [str(e) for e in errors] == ["log handler gone", "log handler gone"]

    def broken_describe(item: Any) -> str:
        raise RuntimeError("repr failed")

    lines: list[str] = []
    log = _log(lines.append, describe=broken_describe, on_error=errors.append)
    log.not_retried(0, "a", FileNotFoundError("a"))
    assert lines == [] and str(errors[-1]) == "repr failed"


@pytest.mark.parametrize("is_async", [True, False])
def test_a_retry_storm_logs_a_bounded_number_of_lines(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("tests.iterate.retries")

    class LoggingObserver(RecordingObserver):
        def retry_note(self, note: str) -> None:
            logger.info("Iterate retries: %s", note)

    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def body(item: str) -> str:
        n = int(item)
        with lock:
            calls[n] += 1
            first = calls[n] == 1
        if n % 5 == 0:
            raise PermissionError(errno.EACCES, "Permission denied", item)
        if first:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return item

    items = [str(n) for n in range(200)]
    runner = _runner(
        body,
        # no progress interval passes during the run: the summary comes at its end
        RunOptions(
            concurrency=16, item_retries=2, item_retry_delay=0, max_failures=None, progress_interval=3600
        ),
        is_async=is_async,
        observer=LoggingObserver(),
    )
    with caplog.at_level(logging.INFO, logger=logger.name):
        results = runner.run(items)
    assert results == [None if n % 5 == 0 else str(n) for n in range(200)]
    assert runner.statistics().retried == 160  # each of the 160 others once
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    retries = [line for line in lines if "; retry 1/2 in " in line and "since the last line" not in line]
    permanent = [
        line
        for line in lines
        if line.endswith("(item_retry_permanent=True retries it)") and "since" not in line
    ]
    summaries = [line for line in lines if "since the last line" in line]
    assert (len(retries), len(permanent), len(summaries)) == (LOGGED_INDIVIDUALLY, LOGGED_INDIVIDUALLY, 1), (
        lines
    )
    assert len(lines) == 2 * LOGGED_INDIVIDUALLY + 1
    assert summaries[0].startswith(
        f"Iterate retries: {160 - LOGGED_INDIVIDUALLY} more item retries and {40 - LOGGED_INDIVIDUALLY} more "
        "permanent errors not retried since the last line; most recent retry: item "
    )


def test_the_monitor_writes_the_summary_on_its_progress_interval() -> None:
    ticked = threading.Event()

    class Observer(RecordingObserver):
        def progress(self, stats: RunStatistics) -> None:
            super().progress(stats)
            ticked.set()

    observer = Observer()
    log = _log(observer.retry_note, individually=1)
    for n in range(4):
        log.retrying(n, str(n), TimeoutError("t"), 1, 1.0)
    assert len(observer.retry_notes) == 1
    stats = RunStatistics(1, None, 0, 0, 0, 0, 3, 0, 0, 0.0)
    monitor = Monitor(
        lambda: stats, RunOptions(progress_interval=0.01), checkpoint=None, observer=observer, retry_log=log
    )
    monitor.start()
    try:
        assert ticked.wait(10)
    finally:
        monitor.stop()
    assert observer.reports and observer.retry_notes[1].startswith("3 more item retries since the last line")
    assert len(observer.retry_notes) == 2  # later intervals had nothing new to say
