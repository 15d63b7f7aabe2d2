"""The HTTP test server itself (devtools/http_server.py), checked with the standard library's client.

The client tests, the demo and the benchmark rely on what it promises: reproducible records, four
pagination styles that end, a rate limit and a capacity that answer as documented, latency growing
with load, connections and arrivals counted, TLS with its own CA, and a large body streamed
without being held in memory.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from devtools.http_server import HTTPTestServer, large_body_sha256, record, record_bytes

from .conftest import RECORDS


def get(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, **kwargs) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_records_are_reproducible_json_of_2_to_10_kb(http_server: HTTPTestServer) -> None:
    sizes = []
    for record_id in (1, 2, 17, 500, RECORDS):
        status, headers, body = get(f"{http_server.url}/records/{record_id}")
        assert (status, headers["content-type"]) == (200, "application/json")
        assert body == record_bytes(record_id) and json.loads(body) == record(record_id)
        sizes.append(len(body))
    assert all(2000 <= size <= 10_240 for size in sizes), sizes
    every = [len(record_bytes(i)) for i in range(1, 20_001)]
    assert min(every) >= 2000 and max(every) <= 10_240 and max(every) - min(every) > 7000
    assert get(f"{http_server.url}/records/{RECORDS + 1}")[0] == 404


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def test_every_pagination_style_reaches_the_last_record_once(http_server: HTTPTestServer) -> None:
    expected = list(range(1, RECORDS + 1))
    base = http_server.url

    seen: list[int] = []
    url: str | None = f"{base}/list/link?per_page=64"
    while url:
        _, headers, body = get(url)
        seen += _ids(json.loads(body))
        links = {
            part.split(";")[1].strip(): part.split(";")[0].strip()[1:-1]
            for part in headers["link"].split(",")
        }
        url = links.get('rel="next"')
    assert seen == expected

    seen, cursor = [], ""
    while True:
        document = json.loads(get(f"{base}/list/cursor?limit=70&cursor={cursor}")[2])
        seen += _ids(document["data"])
        if document["meta"]["next_cursor"] is None:
            break
        cursor = document["meta"]["next_cursor"]
    assert seen == expected

    seen, offset = [], 0
    while True:
        document = json.loads(get(f"{base}/list/offset?offset={offset}&limit=90")[2])
        seen += _ids(document["items"])
        offset += document["limit"]
        if offset >= document["total"]:
            break
    assert seen == expected

    seen, page = [], 1
    while True:
        document = json.loads(get(f"{base}/list/page?page={page}&per_page=80")[2])
        seen += _ids(document["results"])
        if page >= document["total_pages"]:
            break
        page += 1
    assert seen == expected


def test_rate_limit_answers_429_with_retry_after_in_seconds_or_as_a_date(http_server: HTTPTestServer) -> None:
    http_server.configure(rate_limit=2, burst=3)
    statuses = [get(f"{http_server.url}/records/1", {"X-Client-Id": "a"})[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, headers, _ = get(f"{http_server.url}/records/1", {"X-Client-Id": "a"})
    assert status == 429 and headers["retry-after"] == "1"
    # per client: another one still has its burst
    assert get(f"{http_server.url}/records/1", {"X-Client-Id": "b"})[0] == 200

    http_server.configure(retry_after="date", rate_limit=0.5, burst=1)
    assert get(f"{http_server.url}/records/1", {"X-Client-Id": "c"})[0] == 200
    status, headers, _ = get(f"{http_server.url}/records/1", {"X-Client-Id": "c"})
    when = email.utils.parsedate_to_datetime(headers["retry-after"]).timestamp()
    assert status == 429 and time.time() < when <= time.time() + 3


def _concurrently(count: int, call: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_capacity_answers_503_beyond_the_requests_in_flight(http_server: HTTPTestServer) -> None:
    http_server.configure(capacity=4, overload_retry_after=2)
    results = _concurrently(10, lambda i: get(f"{http_server.url}/slow?ms=400"))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(200) >= 4 and statuses.count(503) >= 1, statuses
    assert {headers["retry-after"] for status, headers, _ in results if status == 503} == {"2"}
    assert http_server.stats().in_flight_peak >= 5


def test_latency_grows_with_the_requests_in_flight(http_server: HTTPTestServer) -> None:
    http_server.configure(latency_ms=50, latency_per_request_ms=40)

    def timed(index: int) -> float:
        started = time.monotonic()
        assert get(f"{http_server.url}/records/{index + 1}")[0] == 200
        return time.monotonic() - started

    alone = timed(0)
    together = _concurrently(8, timed)
    assert 0.05 <= alone < 0.2
    # the last of 8 arrivals waits 50 ms + 7 x 40 ms
    assert max(together) >= 0.3, together


def test_connections_and_arrivals_are_counted(http_server: HTTPTestServer) -> None:
    first = http.client.HTTPConnection(http_server.host, http_server.port, timeout=10)
    second = http.client.HTTPConnection(http_server.host, http_server.port, timeout=10)
    for connection in (first, second, first):
        connection.request("GET", "/records/3", headers={"X-Client-Id": "counted"})
        connection.getresponse().read()
    stats = http_server.stats()
    assert (stats.connections_opened, stats.connections_open, stats.connections_peak) == (2, 2, 2)
    records = http_server.requests("/records/3")
    assert [r.client for r in records] == ["counted"] * 3
    assert records[0].connection == records[2].connection != records[1].connection
    assert records[0].time <= records[1].time <= records[2].time <= time.time()
    first.close()
    second.close()
    http_server.wait_until(lambda s: s.connections_open == 0, "both connections closed")


def test_credentials_are_checked_and_recorded_without_the_secret(
    make_server: Callable[..., HTTPTestServer],
) -> None:
    server = make_server(basic_auth=("ada", "s3cret"), bearer_token="tok-123")
    basic = "Basic " + base64.b64encode(b"ada:s3cret").decode()
    wrong = "Basic " + base64.b64encode(b"ada:nope").decode()
    assert get(f"{server.url}/whoami")[0] == 401
    assert get(f"{server.url}/whoami", {"Authorization": wrong})[0] == 401
    assert json.loads(get(f"{server.url}/whoami", {"Authorization": basic})[2]) == {"auth": "basic:ada"}
    assert get(f"{server.url}/whoami", {"Authorization": "Bearer tok-123"})[0] == 200
    recorded = [r.auth for r in server.requests()]
    assert recorded == [None, "basic:ada:wrong", "basic:ada", "bearer"]
    assert "s3cret" not in json.dumps([r.__dict__ for r in server.requests()])


def test_tls_with_a_ca_made_at_start(tls_server: HTTPTestServer) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:") and tls_server.ca_path is not None
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        get(f"{tls_server.url}/whoami")
    context = ssl.create_default_context(cafile=str(tls_server.ca_path))
    assert get(f"{tls_server.url}/whoami", context=context)[0] == 200


def test_a_large_body_is_streamed_without_being_held(http_server: HTTPTestServer) -> None:
    size = 200 * 1024 * 1024
    assert http_server.pid is not None
    server_process = psutil.Process(http_server.pid)
    before = server_process.memory_info().rss
    connection = http.client.HTTPConnection(http_server.host, http_server.port, timeout=30)
    connection.request("GET", f"/large?size={size}")
    response = connection.getresponse()
    assert int(response.headers["content-length"]) == size
    digest = hashlib.sha256()
    received = 0
    peak = before
    while block := response.read(1024 * 1024):
        digest.update(block)
        received += len(block)
        if received % (16 * 1024 * 1024) < len(block):
            peak = max(peak, server_process.memory_info().rss)
    connection.close()
    assert received == size and digest.hexdigest() == large_body_sha256(size)
    assert peak - before < 64 * 1024 * 1024, f"the server grew by {(peak - before) >> 20} MiB"


def test_restart_keeps_the_port_and_the_link_headers_follow_the_host(
    make_server: Callable[..., HTTPTestServer],
) -> None:
    server = make_server(records=30)
    port = server.port
    server.restart()
    assert server.port == port
    _, headers, _ = get(f"{server.url}/list/link?per_page=10", {"Host": "example.test:8080"})
    assert urlsplit(headers["link"].split(";")[0].strip("<>")).netloc == "example.test:8080"
