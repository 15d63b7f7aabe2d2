"""HTTPClient against the real test server: requests, credentials, a client per loop, bounded connections."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable

import pytest
from devtools.http_server import HTTPTestServer, record

from airflow_iterate._core import DEFAULT_ASYNC_CONCURRENCY, is_permanent_error
from airflow_iterate.http import (
    HTTPClient,
    HTTPClientClosedError,
    HTTPClientUsageError,
    HTTPRequestError,
    HTTPStatusError,
    HTTPTimeoutError,
    RetryPolicy,
)

from ._util import run


def test_requests_of_every_method_and_their_answers(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            response = await client.get("records/7")
            assert (response.status, response.ok, response.attempts) == (200, True, 1)
            assert response.json() == record(7) and response.headers["Content-Type"] == "application/json"
            assert await client.get_json("/records/8") == record(8)  # with or without the leading slash
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                echoed = (await client.request(method, "echo", json={"n": 1}, params={"q": "a b"})).json()
                assert (echoed["method"], echoed["query"], echoed["body"]) == (
                    method,
                    {"q": "a b"},
                    '{"n": 1}',
                )
            created = await client.post("records", json={"name": "new"})
            assert created.status == 201 and created.json()["received_bytes"] > 0
            assert (await client.head("records/7")).content == b""
            assert (await client.get("echo", headers={"X-Trace": "t1"})).json()["headers"]["x-trace"] == "t1"

    run(main())


def test_basic_credentials_from_the_connection(
    make_server: Callable[..., HTTPTestServer], make_connection: Callable[..., str]
) -> None:
    server = make_server(basic_auth=("ada", "pa55-word"))
    good = make_connection(server, login="ada", password="pa55-word")
    bad = make_connection(server, login="ada", password="wrong-one")

    async def main() -> None:
        async with HTTPClient(good) as client:
            assert (await client.get_json("whoami")) == {"auth": "basic:ada"}
        async with HTTPClient(bad) as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.get("whoami")
        assert caught.value.status == 401 and is_permanent_error(caught.value)
        assert caught.value.attempts == 1  # a refusal is not retried

    run(main())
    assert [r.auth for r in server.requests("/whoami")] == ["basic:ada", "basic:ada:wrong"]


def test_bearer_tokens_from_an_extra_or_an_authorization_header(
    make_server: Callable[..., HTTPTestServer], make_connection: Callable[..., str]
) -> None:
    server = make_server(bearer_token="tok-31337")
    by_extra = make_connection(server, bearer_token="tok-31337")
    by_header = make_connection(server, Authorization="Bearer tok-31337", **{"X-Api-Version": "3"})

    async def main() -> None:
        for conn_id in (by_extra, by_header):
            async with HTTPClient(conn_id) as client:
                assert (await client.get_json("whoami")) == {"auth": "bearer"}
        async with HTTPClient(by_header) as client:
            assert (await client.get_json("echo"))["headers"]["x-api-version"] == "3"

    run(main())


def test_credentials_and_header_extras_go_to_the_connections_origin_only(
    http_server: HTTPTestServer,
    make_server: Callable[..., HTTPTestServer],
    make_connection: Callable[..., str],
) -> None:
    elsewhere = make_server()
    conn_id = make_connection(http_server, login="ada", password="pa55-word", **{"X-Tenant": "acme"})

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            home = (await client.get_json("echo"))["headers"]
            away = (await client.get_json(f"{elsewhere.url}/echo", headers={"X-Mine": "1"}))["headers"]
        assert home["authorization"].startswith("Basic ") and home["x-tenant"] == "acme"
        assert "authorization" not in away and "x-tenant" not in away and away["x-mine"] == "1"

    run(main())


def test_shared_gives_every_item_of_a_loop_the_same_client_and_closes_it_with_the_loop(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)
    seen: list[HTTPClient] = []

    async def item(n: int) -> int:
        client = HTTPClient.shared(conn_id)
        seen.append(client)
        return (await client.get(f"records/{n}")).status

    async def task_run() -> list[int]:
        return await asyncio.gather(*(item(n) for n in range(1, 41)))

    assert run(task_run()) == [200] * 40
    assert len({id(c) for c in seen}) == 1 and seen[0].closed  # closed when the loop ended
    assert seen[0].statistics().requests == 40
    run(task_run())  # a new loop: a new client
    assert len({id(c) for c in seen}) == 2

    async def mismatch() -> None:
        HTTPClient.shared(conn_id, max_connections_per_host=4)
        with pytest.raises(HTTPClientUsageError, match="pass the same options everywhere"):
            HTTPClient.shared(conn_id, max_connections_per_host=8)

    run(mismatch())
    with pytest.raises(HTTPClientUsageError, match="async code"):
        HTTPClient.shared(conn_id)

    other_id = make_connection(http_server)

    async def two_connections_and_a_closed_client() -> None:
        first, other = HTTPClient.shared(conn_id), HTTPClient.shared(other_id)
        assert other is not first and other.conn_id == other_id
        assert HTTPClient.shared(conn_id) is first and HTTPClient.shared(other_id) is other
        await first.aclose()
        again = HTTPClient.shared(conn_id)  # a closed client is never handed out
        assert again is not first and not again.closed
        assert (await again.get("records/1")).status == 200

    run(two_connections_and_a_closed_client())


def test_at_its_defaults_every_item_in_flight_gets_a_connection(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    """The default bound is the default concurrency of async items (128): the pool never makes
    items wait at the defaults, and still never opens more than that."""
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            assert client.max_connections_per_host == DEFAULT_ASYNC_CONCURRENCY == 128
            statuses = await asyncio.gather(*(client.get("slow?ms=1000") for _ in range(200)))
            assert all(r.status == 200 for r in statuses)
        # a larger bound alone is enough: the bound in all follows it
        async with HTTPClient(conn_id, max_connections_per_host=200) as client:
            await client.get("records/1")

    run(main())
    stats = http_server.stats()
    assert stats.connections_peak == 128 and stats.in_flight_peak == 128, stats


def test_connections_per_host_are_bounded_and_kept_alive(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id, max_connections_per_host=8) as client:
            # 200 requests at once, each held 30 ms by the server
            statuses = await asyncio.gather(*(client.get("slow?ms=30") for _ in range(200)))
            assert statuses and all(r.status == 200 for r in statuses)
            # then 300 more, 4 at a time, on the connections already open
            source = iter(range(300))

            async def worker() -> None:
                for n in source:
                    await client.get(f"records/{n % 100 + 1}")

            await asyncio.gather(*(worker() for _ in range(4)))

    run(main())
    stats = http_server.stats()
    assert stats.requests == 500
    assert stats.connections_peak <= 8 and stats.in_flight_peak <= 8, stats
    assert stats.connections_opened <= 8, stats  # every request after the first eight reused one
    assert len({r.connection for r in http_server.requests()}) <= 8


def test_errors_name_the_request_and_keep_their_meaning(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id, retry=RetryPolicy(attempts=2, backoff=0.01)) as client:
            with pytest.raises(HTTPStatusError) as not_found:
                await client.get("records/5000")
            kept = await client.get("records/5000", check=False)
            assert (kept.status, kept.ok) == (404, False)
            with pytest.raises(HTTPStatusError) as server_error:
                await client.get("status/500")
            with pytest.raises(HTTPTimeoutError) as slow:
                await client.get("slow?ms=2000", timeout=0.2)
        return not_found.value, server_error.value, slow.value

    not_found, server_error, slow = run(main())
    assert str(not_found).startswith(f"GET {http_server.url}/records/5000 answered 404 Not Found: ")
    assert '{"error":"no record 5000"}' in str(not_found) and not_found.iterate_permanent is True
    assert (server_error.status, server_error.attempts, server_error.iterate_permanent) == (500, 1, False)
    assert isinstance(slow, TimeoutError) and not is_permanent_error(slow) and slow.attempts == 2
    for error in (not_found, server_error, slow):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert (copy.method, copy.url, copy.conn_id) == (error.method, error.url, error.conn_id)


def test_check_response_false_on_the_connection_returns_error_statuses(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server, check_response=False)

    async def main() -> int:
        async with HTTPClient(conn_id) as client:
            return (await client.get("records/0")).status

    assert run(main()) == 404


def test_wrong_use_is_refused(http_server: HTTPTestServer, make_connection: Callable[..., str]) -> None:
    conn_id = make_connection(http_server)
    with pytest.raises(HTTPClientUsageError, match="max_connections_per_host must be at least 1"):
        HTTPClient(conn_id, max_connections_per_host=0)
    with pytest.raises(HTTPClientUsageError, match="at least max_connections_per_host"):
        HTTPClient(conn_id, max_connections_per_host=50, max_connections=10)
    with pytest.raises(HTTPClientUsageError, match="attempts"):
        RetryPolicy(attempts=0)
    client = HTTPClient(conn_id)

    async def first() -> None:
        await client.get("records/1")

    async def other_loop() -> None:
        with pytest.raises(HTTPClientUsageError, match="another event loop"):
            await client.get("records/1")
        await client.aclose()  # closing from anywhere is allowed

    run(first())
    run(other_loop())

    async def closed() -> None:
        with pytest.raises(HTTPClientClosedError):
            await client.get("records/1")

    run(closed())


def test_redirects_are_followed_with_the_headers_each_origin_may_see(
    http_server: HTTPTestServer,
    make_server: Callable[..., HTTPTestServer],
    make_connection: Callable[..., str],
) -> None:
    elsewhere = make_server()
    conn_id = make_connection(http_server, login="ada", password="pa55-word", **{"X-Tenant": "acme"})
    mine = {"X-Mine": "1", "Cookie": "session=abc"}

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            home = await client.get("redirect", params={"to": "/echo?hop=2"}, headers=mine)
            assert home.url == f"{http_server.url}/echo?hop=2"
            seen = home.json()["headers"]
            assert seen["authorization"].startswith("Basic ") and seen["x-tenant"] == "acme"
            assert seen["cookie"] == "session=abc"
            away = await client.get("redirect", params={"to": f"{elsewhere.url}/echo"}, headers=mine)
            assert away.url == f"{elsewhere.url}/echo" and away.attempts == 1
            seen = away.json()["headers"]
            assert "authorization" not in seen and "x-tenant" not in seen and "cookie" not in seen
            assert seen["x-mine"] == "1"
            # 303 (and 301/302 after a POST) turn into a GET without a body; 307 and 308 do not
            after_303 = (
                await client.post("redirect", params={"status": 303, "to": "/echo"}, json={"a": 1})
            ).json()
            assert (after_303["method"], after_303["body_bytes"]) == ("GET", 0)
            after_307 = (
                await client.post("redirect", params={"status": 307, "to": "/echo"}, json={"a": 1})
            ).json()
            assert (after_307["method"], after_307["body"]) == ("POST", '{"a": 1}')
            with pytest.raises(
                HTTPRequestError, match=r"more than 10 redirects \(the `max_redirects` extra\)"
            ) as loop:
                await client.get("redirect")
            assert is_permanent_error(loop.value)

    run(main())
    assert len(http_server.requests("/redirect?status=") + http_server.requests("/redirect?to=")) == 4
    assert len([r for r in http_server.requests() if r.path == "/redirect"]) == 11


def test_a_connection_that_does_not_follow_redirects_returns_them(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server, allow_redirects=False)

    async def main() -> tuple[int, str]:
        async with HTTPClient(conn_id) as client:
            response = await client.get("redirect", params={"to": "/records/1"})
            return response.status, response.headers["Location"]

    assert run(main()) == (302, "/records/1")
