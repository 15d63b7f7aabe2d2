"""TLS: certificates are verified by default; a self-signed server is trusted only through its CA."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer

from airflow_iterate._core import is_permanent_error
from airflow_iterate.http import HTTPClient, HTTPConfigError, HTTPTLSError

from ._util import run


def test_a_server_whose_ca_is_not_configured_is_refused_for_good(
    tls_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(tls_server, verify=None)  # the default: the system's CAs

    async def main() -> HTTPTLSError:
        async with HTTPClient(conn_id) as client:
            with pytest.raises(HTTPTLSError) as caught:
                await client.get("records/1")
            return caught.value

    error = run(main())
    assert "certificate is not trusted" in str(error) and "`verify` extra" in str(error)
    assert is_permanent_error(error) and error.attempts == 1  # not retried: it would be refused again
    assert error.sent is False
    assert tls_server.stats().requests == 0  # nothing reached the API


def test_its_ca_bundle_in_the_verify_extra_is_trusted_through_a_proxy(
    tls_server: HTTPTestServer, make_proxy: Callable[..., DelayProxy], make_connection: Callable[..., str]
) -> None:
    proxy = make_proxy(tls_server, delay=0.002)
    conn_id = make_connection(tls_server, via=proxy)  # verify: the server's CA

    async def main() -> list[int]:
        async with HTTPClient(conn_id) as client:
            return [(await client.get(f"records/{n}")).status for n in range(1, 6)]

    assert run(main()) == [200] * 5
    assert tls_server.stats().connections_opened == 1


def test_verification_turned_off_is_explicit_and_logged(
    tls_server: HTTPTestServer, make_connection: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_iterate.http")
    conn_id = make_connection(tls_server, verify=False)

    async def main() -> int:
        async with HTTPClient(conn_id) as client:
            return (await client.get("records/1")).status

    assert run(main()) == 200
    assert "TLS certificate verification is off" in caplog.text


def test_an_unreadable_ca_bundle_is_a_configuration_error(
    tls_server: HTTPTestServer, make_connection: Callable[..., str], tmp_path: Path
) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("this is no certificate\n")
    conn_id = make_connection(tls_server, verify=str(bad))

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            with pytest.raises(HTTPConfigError, match="cannot load its TLS files") as caught:
                await client.get("records/1")
            assert is_permanent_error(caught.value)

    run(main())
