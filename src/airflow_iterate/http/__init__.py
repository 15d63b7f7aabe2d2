"""HTTP for ``.iterate()``: thousands of API calls over one pooled, configured client per task run.

Needs the ``http`` extra (``pip install airflow-iterate[http]``: aiohttp and the Airflow http
provider) and an Airflow connection of type ``http``, read the way the provider's hooks read it
(base URL from host, schema and port; login and password as basic authentication; extras as
options and headers; TLS certificates verified by default).

Async items (one event loop for the whole task run)::

    from airflow_iterate.http import HTTPClient

    @task
    async def fetch(record_id: int) -> dict:
        client = HTTPClient.shared("my_api")  # one client per task run, shared by all items
        return await client.get_json(f"records/{record_id}")

    fetch.iterate(record_id=list_ids())

Listings: :func:`paginate` (items) and :func:`paginate_pages` over a :class:`LinkHeader`,
:class:`Cursor`, :class:`OffsetLimit` or :class:`PageNumber` style. Large answers:
``client.stream()``, :func:`download_file`, :func:`download_to_storage` (atomic, never whole in
memory). Retries of overloads and broken connections: :class:`RetryPolicy`.

Layout::

    _settings.py     reading the Airflow connection (in a thread) into ConnectionSettings, TLS
    _session.py      SessionHolder: the aiohttp session and its connections, opened once, closed
    _client.py       HTTPClient: its options, shared(), request() and the methods, stream(), the
                     retry loop
    _retry.py        RetryPolicy and Retry-After
    _response.py     HTTPResponse (read whole), HTTPStream (read as it comes), Link headers
    _paginate.py     paginate / paginate_pages and the four pagination styles
    _download.py     streaming answers to local files or object storage, atomically
    _statistics.py   ClientStatistics
    _errors.py       the exceptions (all are airflow_iterate.IterateError)
    _error_map.py    which exception a failure becomes, with a message naming the request
    _redact.py       keeping credentials out of messages
"""

from __future__ import annotations

from .._public import present_as as _present_as
from ._client import HTTPClient
from ._download import download_file, download_to_storage
from ._errors import (
    HTTPClientClosedError,
    HTTPClientError,
    HTTPClientUsageError,
    HTTPConfigError,
    HTTPDownloadError,
    HTTPPaginationError,
    HTTPRequestError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPTLSError,
    HTTPTransportError,
)
from ._paginate import Cursor, LinkHeader, OffsetLimit, Page, PageNumber, paginate, paginate_pages
from ._response import HTTPResponse, HTTPStream
from ._retry import RetryPolicy
from ._statistics import ClientStatistics

__all__ = [
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
]

_present_as(__name__, globals(), __all__)
