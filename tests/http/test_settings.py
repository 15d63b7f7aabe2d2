"""Airflow http connections mean here what they mean to the http provider's hooks.

Each connection is read twice: by this package and by the provider's ``HttpAsyncHook.config()``
(the connection resolution its ``session()`` uses); base URL, basic credentials and headers must
agree. What the provider reads differently or not at all is refused with a message, never
ignored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_iterate._core import is_permanent_error
from airflow_iterate.http import HTTPConfigError
from airflow_iterate.http._settings import ConnectionSettings, read_settings

_numbers = iter(range(1, 10_000))


def define(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> str:
    conn_id = f"http_settings_{next(_numbers)}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields}))
    return conn_id


def provider_config(conn_id: str) -> Any:
    from airflow.providers.http.hooks.http import HttpAsyncHook

    return asyncio.run(HttpAsyncHook(method="GET", http_conn_id=conn_id).config())


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "api.example.com"},
        {"host": "api.example.com", "schema": "https", "port": 8443},
        {"host": "https://api.example.com/v2", "login": "ada", "password": "s3cret"},
        {
            "host": "api.example.com",
            "schema": "https",
            "extra": {"X-Api-Version": "7", "Accept": "application/json"},
        },
        {
            "host": "api.example.com",
            "extra": {"Authorization": "Bearer abc.def", "timeout": 12, "verify": False},
        },
        {"host": "10.0.0.5", "port": 9000, "extra": {"allow_redirects": False, "check_response": False}},
    ],
)
def test_the_connection_reads_as_the_provider_reads_it(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]
) -> None:
    conn_id = define(monkeypatch, **fields)
    ours = read_settings(conn_id)
    theirs = provider_config(conn_id)
    assert ours.base_url == theirs.base_url.rstrip("/")
    expected_headers = dict(theirs.headers or {})
    if theirs.auth is not None:
        expected_headers["Authorization"] = _basic(theirs.auth.login, theirs.auth.password)
    assert ours.request_headers() == expected_headers


def test_extras_are_options_as_the_provider_reads_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    conn_id = define(
        monkeypatch,
        host="api.example.com",
        schema="https",
        extra={
            "timeout": [3, 40],
            "verify": str(bundle),
            "max_redirects": "4",
            "allow_redirects": "false",
            "trust_env": True,
            "check_response": False,
            "stream": True,
        },
    )
    settings = read_settings(conn_id)
    assert (settings.connect_timeout, settings.read_timeout) == (3.0, 40.0)
    assert (settings.verify, settings.ca_bundle) == (True, str(bundle))
    assert (settings.max_redirects, settings.allow_redirects, settings.trust_env) == (4, False, True)
    assert settings.check_response is False
    assert settings.headers == ()  # options are not headers
    assert settings.origin == ("https", "api.example.com", 443)


def test_defaults_verify_tls_and_bound_time(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = read_settings(define(monkeypatch, host="api.example.com", schema="https"))
    assert settings.verify is True and settings.ca_bundle is None
    assert (settings.connect_timeout, settings.read_timeout) == (30.0, 300.0)
    assert (settings.allow_redirects, settings.check_response, settings.trust_env) == (True, True, False)


def test_a_password_written_into_the_host_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """``describe()`` names the connection in log lines (the client's pauses, its advice on rate
    limits) and errors: a password in the host must not reach them."""
    settings = read_settings(define(monkeypatch, host="https://ops:hunter2@api.example.com"))
    assert "hunter2" not in settings.describe() and "api.example.com" in settings.describe()
    with pytest.raises(HTTPConfigError) as refused:
        read_settings(define(monkeypatch, host="ftp://ops:hunter2@files.example.com"))
    assert "hunter2" not in str(refused.value) and "files.example.com" in str(refused.value)


def test_a_bearer_token_extra_and_secrets_to_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = define(
        monkeypatch, host="api.example.com", extra={"bearer_token": "tok-9876", "X-Api-Key": "k-5555"}
    )
    settings = read_settings(conn_id)
    assert settings.request_headers() == {"X-Api-Key": "k-5555", "Authorization": "Bearer tok-9876"}
    assert {"tok-9876", "k-5555"} <= set(settings.secrets())
    assert "tok-9876" not in repr(settings) and "k-5555" not in repr(settings)


def test_turning_verification_off_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_iterate.http")
    settings = read_settings(
        define(monkeypatch, host="h.example.com", schema="https", extra={"verify_ssl": "false"})
    )
    assert settings.verify is False
    assert "verification is off" in caplog.text


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"host": ""}, "has no host"),
        ({"host": "ftp://files.example.com"}, r"is not an http\(s\) URL"),
        (
            {"host": "a.example.com", "extra": {"proxy": "http://proxy:3128"}},
            "`proxy` extra is not supported",
        ),
        ({"host": "a.example.com", "extra": {"srv_lookup": True}}, "srv_lookup"),
        (
            {"host": "a.example.com", "login": "ada", "extra": {"bearer_token": "t"}},
            "one kind of credentials",
        ),
        ({"host": "a.example.com", "extra": {"timeout": "soon"}}, "`timeout` extra must be seconds"),
        ({"host": "a.example.com", "extra": {"verify": "/no/such/ca.pem"}}, "does not exist"),
        ({"host": "a.example.com", "extra": {"X-Things": {"a": 1}}}, "must be text"),
        ({"host": "a.example.com", "extra": {"cert": 42}}, "`cert` extra"),
    ],
)
def test_a_connection_defined_wrong_is_a_permanent_error_saying_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], says: str
) -> None:
    conn_id = define(monkeypatch, **fields)
    with pytest.raises(HTTPConfigError, match=says) as caught:
        read_settings(conn_id)
    assert conn_id in str(caught.value) and is_permanent_error(caught.value)


def test_an_undefined_connection_says_how_to_define_it() -> None:
    with pytest.raises(HTTPConfigError, match="AIRFLOW_CONN_NO_SUCH_API") as caught:
        read_settings("no_such_api")
    assert is_permanent_error(caught.value)


def test_settings_are_a_value() -> None:
    settings = ConnectionSettings("c", "https://x.example.com", ("https", "x.example.com", 443))
    assert settings.same_origin("https://x.example.com/a?b=1")
    assert settings.same_origin("https://X.example.com:443/")
    assert not settings.same_origin("http://x.example.com/")
    assert not settings.same_origin("https://x.example.com.evil.test/")


def test_relative_urls_join_the_base_url_as_the_provider_joins_an_endpoint() -> None:
    from airflow.providers.http.hooks.http import _url_from_endpoint

    from airflow_iterate.http._settings import join_url

    for base in ("https://api.example.com", "https://api.example.com/v2"):
        for url in ("records/7", "/records/7", "records?next=https://elsewhere.example/x", ""):
            assert join_url(base, url) == _url_from_endpoint(base, url)
    assert join_url("https://api.example.com", "HTTPS://other.example/a") == "HTTPS://other.example/a"
