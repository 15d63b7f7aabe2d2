"""Credentials never show in errors or logs: not the password, not a token, not an auth header,
not even when the server echoes them back in the body of an error."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable

import pytest
from devtools.http_server import HTTPTestServer

from airflow_iterate.http import HTTPClient, HTTPStatusError, HTTPTransportError, RetryPolicy
from airflow_iterate.http._redact import Masker, redact_url

from ._util import run

PASSWORD = "pw-Correct-Horse-77"
TOKEN = "tok-Battery-Staple-88"
API_KEY = "key-Tr0ub4dor-99"


def test_urls_lose_their_userinfo_and_secret_parameters() -> None:
    assert redact_url("https://ada:s3cret@api.example.com/a?page=2") == "https://***@api.example.com/a?page=2"
    assert (
        redact_url("https://api.example.com/a?api_key=abc&page=2&access_token=x&X-Amz-Signature=s&sig=1")
        == "https://api.example.com/a?api_key=***&page=2&access_token=***&X-Amz-Signature=***&sig=***"
    )
    assert (
        redact_url("https://api.example.com/records/7?page=2") == "https://api.example.com/records/7?page=2"
    )
    assert (
        Masker(["abc", "s3cret-value"])("the s3cret-value and abc") == "the *** and abc"
    )  # too short to mask


def test_secrets_are_masked_in_errors_even_when_the_server_echoes_them(
    make_server: Callable[..., HTTPTestServer],
    make_connection: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server(basic_auth=("ada", PASSWORD))
    basic = make_connection(server, login="ada", password=PASSWORD, **{"X-Api-Key": API_KEY})
    bearer = make_connection(server, bearer_token=TOKEN)
    key_only = make_connection(server, **{"X-Api-Key": API_KEY})
    caplog.set_level(logging.DEBUG, logger="airflow_iterate.http")

    async def main() -> list[BaseException]:
        errors: list[BaseException] = []
        async with HTTPClient(basic, retry=RetryPolicy(attempts=2, backoff=0.01)) as client:
            for url in (
                # the server puts the request's headers (Authorization, X-Api-Key) in its answer
                "status/503?echo_headers=1",
                f"status/400?echo_headers=1&token={TOKEN}",
            ):
                with pytest.raises(HTTPStatusError) as caught:
                    await client.get(url)
                errors.append(caught.value)
        async with HTTPClient(key_only) as client:
            # credentials in the URL itself (basic authentication by aiohttp)
            with pytest.raises(HTTPStatusError) as in_url:
                await client.get(f"http://ada:{PASSWORD}@127.0.0.1:{server.port}/status/403?echo_headers=1")
            errors.append(in_url.value)
        async with HTTPClient(bearer) as client:
            with pytest.raises(HTTPStatusError) as refused:
                await client.get("status/401?echo_headers=1")
            errors.append(refused.value)
        return errors

    errors = run(main())
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [str(pickle.loads(pickle.dumps(e))) for e in errors]
    texts += [f"{e.url} {e.body_start}" for e in errors if isinstance(e, HTTPStatusError)]
    texts.append(caplog.text)  # the retry of the 503 was logged
    assert "answered 503" in texts[0] and "x-api-key" in texts[0]  # the echo is there, masked
    assert "attempt 2" in caplog.text
    for text in texts:
        for secret in (PASSWORD, TOKEN, API_KEY):
            assert secret not in text, text
        assert "YWRhOnB3" not in text  # base64 of "ada:pw..." (the basic credentials)


def test_transport_errors_and_the_client_itself_show_no_secrets(make_connection: Callable[..., str]) -> None:
    class Nowhere:
        host, port, scheme, ca_path = "127.0.0.1", 9, "http", None

    conn_id = make_connection(Nowhere(), login="ada", password=PASSWORD)

    async def main() -> tuple[HTTPTransportError, str]:
        async with HTTPClient(conn_id, retry=RetryPolicy(attempts=1)) as client:
            with pytest.raises(HTTPTransportError) as caught:
                await client.get(f"records?api_key={API_KEY}")
            return caught.value, repr(client) + repr(client.statistics())

    error, described = run(main())
    assert "api_key=***" in str(error)
    for text in (str(error), repr(error), described):
        assert PASSWORD not in text and API_KEY not in text
