"""airflow_iterate.http exposes exactly its __all__, and every error it raises is an IterateError
whose permanence agrees with the core's reading of HTTP statuses."""

from __future__ import annotations

import pickle
import traceback

import pytest

import airflow_iterate
import airflow_iterate.http as http
from airflow_iterate._core import is_permanent_error

PUBLIC = {
    "ClientStatistics",
    "Cursor",
    "HTTPClient",
    "HTTPClientClosedError",
    "HTTPClientError",
    "HTTPClientUsageError",
    "HTTPConfigError",
    "HTTPDownloadError",
    "HTTPPaginationError",
    "HTTPRequestError",
    "HTTPResponse",
    "HTTPStatusError",
    "HTTPStream",
    "HTTPTLSError",
    "HTTPTimeoutError",
    "HTTPTransportError",
    "LinkHeader",
    "OffsetLimit",
    "Page",
    "PageNumber",
    "RetryPolicy",
    "download_file",
    "download_to_storage",
    "paginate",
    "paginate_pages",
}


def test_all_lists_the_public_api_and_nothing_else() -> None:
    assert set(http.__all__) == PUBLIC
    public_names = {n for n in vars(http) if not n.startswith("_")}
    assert public_names - {"annotations"} == PUBLIC


def test_every_error_is_an_iterate_error_named_error_and_catchable_as_the_builtin_it_means() -> None:
    errors = [getattr(http, n) for n in PUBLIC if isinstance(getattr(http, n), type)]
    errors = [e for e in errors if issubclass(e, BaseException)]
    assert len(errors) == 11
    assert all(issubclass(e, airflow_iterate.IterateError) and e.__name__.endswith("Error") for e in errors)
    assert issubclass(http.HTTPTransportError, ConnectionError)
    assert issubclass(http.HTTPTimeoutError, TimeoutError)
    assert issubclass(http.HTTPClientUsageError, RuntimeError)
    assert all(e.__module__ == "airflow_iterate.http" for e in errors)
    error = http.HTTPStatusError(
        "GET x answered 404",
        status=404,
        reason="Not Found",
        body_start="",
        method="GET",
        url="x",
        conn_id="c",
    )
    assert traceback.format_exception_only(error)[0].startswith("airflow_iterate.http.HTTPStatusError: ")


def _status(status: int) -> http.HTTPStatusError:
    return http.HTTPStatusError(
        f"answered {status}", status=status, reason="", body_start="", method="GET", url="u", conn_id="c"
    )


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (410, True),
        (422, True),
        (408, False),
        (423, False),
        (425, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
def test_status_errors_are_permanent_as_the_core_reads_http_statuses(status: int, permanent: bool) -> None:
    import aiohttp

    ours = _status(status)
    assert ours.iterate_permanent is permanent and is_permanent_error(ours) is permanent
    # the same verdict the core gives aiohttp's own error for that status
    theirs = aiohttp.ClientResponseError(None, (), status=status)  # type: ignore[arg-type]
    assert is_permanent_error(theirs) is permanent


def test_the_other_errors_say_whether_a_retry_can_help() -> None:
    request = {"method": "GET", "url": "u", "conn_id": "c"}
    assert is_permanent_error(http.HTTPConfigError("bad extra", conn_id="c"))
    assert is_permanent_error(http.HTTPClientUsageError("bad argument"))
    assert not is_permanent_error(http.HTTPTransportError("reset", sent=True, **request))
    assert not is_permanent_error(http.HTTPTimeoutError("slow", **request))
    assert is_permanent_error(http.HTTPTLSError("untrusted", sent=False, permanent=True, **request))
    assert not is_permanent_error(http.HTTPTLSError("handshake reset", sent=False, **request))
    assert is_permanent_error(http.HTTPDownloadError("a link", target="t", permanent=True, **request))
    assert not is_permanent_error(http.HTTPDownloadError("disk full", target="t", permanent=False, **request))
    assert not is_permanent_error(http.HTTPPaginationError("repeats"))


def test_errors_survive_pickling_with_their_attributes() -> None:
    error = http.HTTPStatusError(
        "GET u answered 429",
        status=429,
        reason="Too Many Requests",
        body_start="slow down",
        retry_after=3.0,
        method="GET",
        url="u",
        conn_id="c",
        item="item 3 ('x')",
        attempts=4,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is http.HTTPStatusError and str(copy) == str(error)
    assert (copy.status, copy.retry_after, copy.item, copy.attempts, copy.iterate_permanent) == (
        429,
        3.0,
        "item 3 ('x')",
        4,
        False,
    )
    config = pickle.loads(pickle.dumps(http.HTTPConfigError("bad", conn_id="c")))
    assert (config.conn_id, str(config)) == ("c", "bad")
