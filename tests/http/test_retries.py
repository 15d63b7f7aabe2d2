"""Overload and failures as a REST user expects them, checked by when the server saw each attempt.

429 and 503 are retried after their ``Retry-After`` (seconds or an HTTP date), which holds every
request of the client; without one, after a jittered backoff; all bounded. A connection cut after
a request was sent is retried for idempotent methods only; a POST is not (a real cut, by the
delay proxy, while the server holds the request).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from email.utils import formatdate

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer
from devtools.sshd import free_loopback_port

from airflow_iterate._core import is_permanent_error
from airflow_iterate.http import HTTPClient, HTTPStatusError, HTTPTransportError, RetryPolicy

from ._util import run

#: the server's clock and ours are the same machine's; allow for scheduling noise only
EARLY = 0.02


def _arrivals(server: HTTPTestServer, path: str) -> list[float]:
    return [r.time for r in server.requests(path)]


def test_429_waits_for_retry_after_in_seconds(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> int:
        async with HTTPClient(conn_id) as client:
            response = await client.get("flaky/seconds?fail=2&status=429&retry_after=1")
            assert response.json()["attempts"] == 3
            return response.attempts

    assert run(main()) == 3
    first, second, third = _arrivals(http_server, "/flaky/seconds")
    assert second - first >= 1 - EARLY and third - second >= 1 - EARLY
    # waited what was asked, the held requests spread over at most as long again; not more
    assert third - first < 4.5


def test_429_waits_for_retry_after_as_an_http_date(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)
    when = math.ceil(time.time()) + 2
    date = formatdate(when, usegmt=True).replace(" ", "%20").replace(",", "%2C")

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            assert (await client.get(f"flaky/dated?fail=1&status=429&retry_after={date}")).status == 200

    run(main())
    _, second = _arrivals(http_server, "/flaky/dated")
    assert second >= when - EARLY, (second, when)


def test_a_retry_after_holds_every_request_of_the_client(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            throttled = asyncio.ensure_future(client.get("flaky/gate?fail=1&status=429&retry_after=1"))
            while not http_server.requests("/flaky/gate"):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the 429 is back: the client waits
            other = await client.get("records/1")  # started during the wait
            assert other.status == 200 and (await throttled).status == 200
            assert client.statistics().paused > 0.5

    run(main())
    (refused, *_) = _arrivals(http_server, "/flaky/gate")
    (held,) = _arrivals(http_server, "/records/1")
    assert held >= refused + 1 - EARLY


def test_requests_held_by_a_pause_go_out_spread_over_as_long_again(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    """Sent at once when the pause ends, the held requests would be the burst the rate limit that
    asked for the pause refuses again; spread over as long again as the pause, they fit it."""
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            throttled = asyncio.ensure_future(client.get("flaky/spread?fail=1&status=429&retry_after=1"))
            while not http_server.requests("/flaky/spread"):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the 429 is back: the client holds every request
            held = await asyncio.gather(*(client.get(f"records/{n}") for n in range(1, 41)))
            assert all(r.status == 200 for r in held) and (await throttled).status == 200

    run(main())
    (refused, *_) = _arrivals(http_server, "/flaky/spread")
    arrivals = sorted(r.time for r in http_server.requests("/records/"))
    assert len(arrivals) == 40
    assert arrivals[0] >= refused + 1 - EARLY  # none before the pause ended
    assert arrivals[-1] - arrivals[0] >= 0.5, arrivals  # not one burst: 40 spread over ~1 s
    assert arrivals[-1] <= refused + 2 + 0.5  # and over no more than as long again


def test_a_rate_limited_burst_completes_at_the_servers_rate(
    make_server: Callable[..., HTTPTestServer],
    make_connection: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_iterate.http")
    server = make_server(rate_limit=10, burst=5)
    conn_id = make_connection(server)

    async def main() -> list[int]:
        async with HTTPClient(conn_id) as client:
            responses = await asyncio.gather(*(client.get(f"records/{n}") for n in range(1, 31)))
            stats = client.statistics()
            assert stats.throttled > 0 and stats.failed == 0
            return [r.status for r in responses]

    started = time.monotonic()
    assert run(main()) == [200] * 30
    elapsed = time.monotonic() - started
    statuses = server.stats().statuses
    assert statuses[200] == 30 and statuses[429] > 0
    assert elapsed >= 2.0  # 30 requests at 10/s after a burst of 5
    # paused again and again: told once how to stay below the limit
    advice = [r for r in caplog.records if "rate_limit=" in r.getMessage()]
    assert len(advice) == 1 and advice[0].levelno == logging.WARNING, caplog.text
    assert "asked this client to wait (429) 3 times" in advice[0].getMessage()


def test_a_retry_after_beyond_the_bound_is_raised_not_waited(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> HTTPStatusError:
        async with HTTPClient(conn_id, retry=RetryPolicy(max_retry_after=30)) as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.get("flaky/later?fail=1&status=429&retry_after=3600")
            return caught.value

    started = time.monotonic()
    error = run(main())
    assert time.monotonic() - started < 5
    assert (error.status, error.retry_after, error.attempts) == (429, 3600.0, 1)
    assert "it asked to retry after 3600s" in str(error) and not is_permanent_error(error)


def test_503_under_overload_is_retried_until_done(
    make_server: Callable[..., HTTPTestServer], make_connection: Callable[..., str]
) -> None:
    server = make_server(capacity=4)  # beyond 4 requests in flight: 503 without Retry-After
    conn_id = make_connection(server)
    policy = RetryPolicy(attempts=12, backoff=0.05, max_backoff=0.5)

    async def main() -> list[int]:
        async with HTTPClient(conn_id, retry=policy) as client:
            responses = await asyncio.gather(*(client.get("slow?ms=50") for _ in range(40)))
            assert client.statistics().throttled > 0
            return [r.status for r in responses]

    assert run(main()) == [200] * 40
    statuses = server.stats().statuses
    assert statuses[200] == 40 and statuses[503] > 0
    assert server.stats().in_flight_peak > 4  # the overload was real


def test_a_server_that_stays_overloaded_fails_after_the_bounded_attempts(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> HTTPStatusError:
        async with HTTPClient(conn_id, retry=RetryPolicy(attempts=3, backoff=0.05)) as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.get("flaky/down?fail=100&status=503")
            return caught.value

    error = run(main())
    assert (error.status, error.attempts) == (503, 3) and not is_permanent_error(error)
    first, second, third = _arrivals(http_server, "/flaky/down")
    # backoff 0.05 s then 0.1 s, each drawn between half and all of it
    assert second - first >= 0.025 - EARLY and third - second >= 0.05 - EARLY


def test_gateway_errors_are_retried_for_idempotent_methods_only(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id, retry=RetryPolicy(backoff=0.01)) as client:
            assert (await client.put("flaky/put?fail=1&status=502", json={})).status == 200
            with pytest.raises(HTTPStatusError) as caught:
                await client.post("flaky/post?fail=1&status=502", json={})
            assert caught.value.attempts == 1
            with pytest.raises(HTTPStatusError) as not_found:
                await client.get("flaky/missing?fail=5&status=404")
            assert not_found.value.attempts == 1 and is_permanent_error(not_found.value)

    run(main())
    assert len(http_server.requests("/flaky/put")) == 2
    assert len(http_server.requests("/flaky/post")) == 1
    assert len(http_server.requests("/flaky/missing")) == 1


async def _cut_when_held(server: HTTPTestServer, proxy: DelayProxy, path: str) -> None:
    """Cut every connection once the server holds (has received, not answered) a request for ``path``."""
    for _ in range(1000):
        if any(r.status is None for r in await asyncio.to_thread(server.requests, path)):
            await asyncio.to_thread(proxy.cut)
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server never held a request for {path}")


def test_a_post_cut_after_it_was_sent_is_not_retried(
    http_server: HTTPTestServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(http_server, delay=0.005)
    conn_id = make_connection(http_server, via=proxy)

    async def main() -> HTTPTransportError:
        async with HTTPClient(conn_id, retry=RetryPolicy(backoff=0.01)) as client:
            cutter = asyncio.ensure_future(_cut_when_held(http_server, proxy, "/records"))
            with pytest.raises(HTTPTransportError) as caught:
                await client.post("records?delay_ms=1500", json={"name": "once"})
            await cutter
            return caught.value

    error = run(main())
    assert (error.sent, error.attempts, error.method) == (True, 1, "POST")
    assert not is_permanent_error(error)  # the item may decide to try again
    assert len(http_server.requests("/records")) == 1  # the server saw it once


def test_a_get_cut_after_it_was_sent_is_retried(
    http_server: HTTPTestServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(http_server, delay=0.005)
    conn_id = make_connection(http_server, via=proxy)

    async def main() -> int:
        async with HTTPClient(conn_id, retry=RetryPolicy(backoff=0.01)) as client:
            cutter = asyncio.ensure_future(_cut_when_held(http_server, proxy, "/slow"))
            response = await client.get("slow?ms=1500")
            await cutter
            return response.status

    assert run(main()) == 200
    # (aiohttp itself sends an idempotent request once more, at once, when its connection breaks:
    # RFC 9112, 9.3.1; the client's own retries come after that, with backoff)
    first, second = http_server.requests("/slow")
    assert first.connection != second.connection  # the cut connection was not reused


def test_a_post_said_to_be_idempotent_is_retried_after_a_cut(
    http_server: HTTPTestServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(http_server, delay=0.005)
    conn_id = make_connection(http_server, via=proxy)

    async def main() -> int:
        async with HTTPClient(conn_id, retry=RetryPolicy(backoff=0.01)) as client:
            cutter = asyncio.ensure_future(_cut_when_held(http_server, proxy, "/records"))
            response = await client.post(
                "records?delay_ms=1500", json={}, headers={"Idempotency-Key": "k1"}, idempotent=True
            )
            await cutter
            return response.status

    assert run(main()) == 201
    assert len(http_server.requests("/records")) == 2


def test_a_post_that_never_left_is_retried_and_then_named(make_connection: Callable[..., str]) -> None:
    class Nowhere:
        host, port, scheme, ca_path = "127.0.0.1", free_loopback_port(), "http", None

    conn_id = make_connection(Nowhere())  # nothing listens there: refused before sending

    async def main() -> HTTPTransportError:
        async with HTTPClient(conn_id, retry=RetryPolicy(attempts=3, backoff=0.01)) as client:
            with pytest.raises(HTTPTransportError) as caught:
                await client.post("records", json={})
            return caught.value

    error = run(main())
    assert (error.sent, error.attempts) == (False, 3)
    assert f"POST http://127.0.0.1:{Nowhere.port}/records failed after 3 attempts: cannot connect" in str(
        error
    )
