"""What an :class:`HTTPClient` reports about itself."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientStatistics"]


@dataclass(frozen=True)
class ClientStatistics:
    """A snapshot of an :class:`HTTPClient`'s totals over its life."""

    conn_id: str
    #: connections it opens to one host at most (requests beyond wait for one)
    max_connections_per_host: int
    #: requests made (a request sent three times counts once)
    requests: int
    #: times requests were sent, retries included
    attempts: int
    #: retries (attempts after the first)
    retried: int
    #: answers 429 or 503 received (each one retried or raised)
    throttled: int
    #: requests that raised
    failed: int
    #: requests in progress now (waiting for a connection included)
    in_flight: int
    #: seconds new requests were held back because the server asked to wait (``Retry-After``)
    paused: float
