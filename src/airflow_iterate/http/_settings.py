"""Airflow ``http`` connections, read into :class:`ConnectionSettings` the way the http provider does.

A connection that works with the provider's ``HttpHook`` / ``HttpAsyncHook`` means the same here
(``tests/http/test_settings.py`` checks it against ``HttpAsyncHook.config()``):

* the base URL: ``host`` as it is when it contains ``://``, else ``<schema or http>://<host>``;
  ``:<port>`` appended when the connection has a port. Relative URLs join it as the provider joins
  an endpoint (one ``/`` between them);
* ``login`` / ``password``: basic authentication;
* extras the provider reads as options: ``timeout`` (seconds for connecting and, as ``requests``
  means it, between bytes of the answer; or ``[connect, read]``), ``verify`` / ``verify_ssl``
  (``true``, ``false``, or the path of a CA bundle, as ``requests`` reads ``verify``),
  ``cert`` (a client certificate: a path, or ``[certificate, key]``), ``allow_redirects``,
  ``max_redirects``, ``trust_env`` (proxies and ``.netrc`` from the environment; off unless set),
  ``check_response`` (``false``: error statuses are returned, not raised); ``stream`` is
  ignored (see ``HTTPClient.stream``);
* every other extra is a header sent with each request, as the provider does: an
  ``Authorization`` extra (``"Bearer <token>"``) works with both;
* one extra of this package: ``bearer_token`` (sends ``Authorization: Bearer <token>``). The
  provider's hooks would send it as a header named ``bearer_token``: for a connection shared with
  them, prefer the ``Authorization`` extra.

Refused, with a message saying so (not silently ignored): ``proxy`` / ``proxies`` and ``srv_lookup``,
which this client does not support, a login together with a bearer token, a header value that is
not text.

TLS certificates are verified unless ``verify`` says ``false`` (which logs a warning each time the
connection is read). Reading a connection goes through the Airflow SDK, which is synchronous: it is
always called in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._errors import HTTPConfigError
from ._redact import is_secret_name, redact_url

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "ConnectionSettings",
    "is_absolute",
    "join_url",
    "load_settings",
    "origin_of",
    "read_settings",
    "settings_from_connection",
    "ssl_context",
]

log = logging.getLogger("airflow_iterate.http")

DEFAULT_CONN_ID = "http_default"
#: seconds to open a connection (TCP and TLS) when the connection sets no ``timeout``
DEFAULT_CONNECT_TIMEOUT = 30.0
#: seconds the server may stay silent in the middle of an answer
DEFAULT_READ_TIMEOUT = 300.0

#: extras the provider reads as options rather than headers
_OPTION_EXTRAS = frozenset(
    {
        "stream",
        "cert",
        "proxy",
        "proxies",
        "timeout",
        "verify",
        "verify_ssl",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "srv_lookup",
        "bearer_token",
    }
)


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to call an API, resolved from an Airflow ``http`` connection."""

    conn_id: str
    #: ``scheme://host[:port][/path]``, without a trailing ``/``
    base_url: str
    #: ``(scheme, host, port)``: credentials and header extras go to this origin only
    origin: tuple[str, str, int]
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    #: the header extras, in order
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    verify: bool = True
    #: a CA bundle to trust instead of the system's
    ca_bundle: str | None = None
    #: ``(certificate, key)`` paths of a client certificate (key ``None``: in the certificate file)
    client_cert: tuple[str, str | None] | None = None
    allow_redirects: bool = True
    max_redirects: int = 10
    trust_env: bool = False
    check_response: bool = True

    def describe(self) -> str:
        # log lines and errors carry it: never a password written into the host
        return f"HTTP connection {self.conn_id!r} ({redact_url(self.base_url)})"

    def request_headers(self) -> dict[str, str]:
        """The headers every request to the connection's origin carries (credentials included)."""
        headers = dict(self.headers)
        if self.login is not None:
            token = base64.b64encode(f"{self.login}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif self.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        return headers

    def secrets(self) -> list[str]:
        """Every credential value the connection holds, for masking in messages."""
        found = [s for s in (self.password, self.bearer_token) if s]
        if self.login is not None:
            found.append(base64.b64encode(f"{self.login}:{self.password or ''}".encode()).decode())
        for name, value in self.headers:
            if is_secret_name(name):
                found.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.lower() in ("bearer", "basic", "token", "apikey"):
                    found.append(credential)
        return found

    def same_origin(self, url: str) -> bool:
        return origin_of(url) == self.origin


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an absolute URL (the default port filled in), else ``None``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, (parts.hostname or "").lower(), port


def is_absolute(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL (anything else joins the base URL)."""
    return url[:8].lower().startswith(("http://", "https://"))


def join_url(base_url: str, url: str) -> str:
    """An absolute ``url`` as it is; a relative one after ``base_url``, as the provider joins an
    endpoint (``_url_from_endpoint``: one ``/`` between them)."""
    if is_absolute(url):
        return url
    if url and not url.startswith("/"):
        return f"{base_url}/{url}"
    return base_url + url


# -- reading the Airflow connection (in a thread) -------------------------------------------------


def read_settings(conn_id: str) -> ConnectionSettings:
    """Fetch ``conn_id`` through the Airflow SDK and resolve it. Blocking: call it in a thread."""
    from airflow.sdk import BaseHook

    from .._airflow._compat import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise HTTPConfigError(
            f"HTTP connection {conn_id!r} is not defined: create it (UI: Admin > Connections, "
            f"`airflow connections add {conn_id} --conn-type http ...`, or an "
            f"AIRFLOW_CONN_{conn_id.upper()} environment variable) or fix the connection id",
            conn_id=conn_id,
        ) from None
    return settings_from_connection(connection)


async def load_settings(conn_id: str | None, connection: Any = None) -> ConnectionSettings:
    """:func:`read_settings` (or :func:`settings_from_connection`) off the event loop."""
    if connection is not None:
        return await asyncio.to_thread(settings_from_connection, connection)
    assert conn_id is not None
    return await asyncio.to_thread(read_settings, conn_id)


def settings_from_connection(connection: Any) -> ConnectionSettings:
    """Resolve an Airflow ``Connection`` (SDK or models) as the http provider does (see the module).

    Blocking (``extra_dejson`` masks secrets through the SDK): call it in a thread from async code.
    """
    conn_id = str(getattr(connection, "conn_id", None) or "<unnamed connection>")

    def fail(message: str) -> HTTPConfigError:
        return HTTPConfigError(f"HTTP connection {conn_id!r}: {message}", conn_id=conn_id)

    host = str(connection.host or "").strip()
    if not host:
        raise fail("the connection has no host; set the host (or the base URL) of the API")
    base_url = host if "://" in host else f"{connection.schema or 'http'}://{host}"
    if connection.port:
        base_url = f"{base_url}:{connection.port}"
    base_url = base_url.rstrip("/")
    origin = origin_of(base_url)
    if origin is None or origin[0] not in ("http", "https") or not origin[1]:
        raise fail(
            f"the base URL {redact_url(base_url)!r} (from host, schema and port) is not an http(s) URL"
        )

    extra: dict[str, Any] = dict(connection.extra_dejson or {})
    for unsupported in ("proxy", "proxies"):
        if extra.get(unsupported):
            raise fail(
                f"the `{unsupported}` extra is not supported by airflow_iterate.http; reach the API "
                "without a proxy, or set trust_env: true to take HTTP(S)_PROXY from the environment"
            )
    if _flag(extra.get("srv_lookup", False), "srv_lookup", fail):
        raise fail("the `srv_lookup` extra (DNS SRV records) is not supported by airflow_iterate.http")

    login = connection.login or None
    bearer = extra.get("bearer_token") or None
    if bearer is not None and not isinstance(bearer, str):
        raise fail("the `bearer_token` extra must be text")
    headers: list[tuple[str, str]] = []
    for name, value in extra.items():
        if name in _OPTION_EXTRAS:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise fail(
                f"the extra {name!r} is sent as a header (as the http provider does with extras it does "
                f"not know), so its value must be text, not {type(value).__name__}"
            )
        headers.append((str(name), str(value)))
    has_authorization = any(name.lower() == "authorization" for name, _ in headers)
    if sum((login is not None, bearer is not None, has_authorization)) > 1:
        raise fail(
            "set one kind of credentials: a login (basic authentication), the `bearer_token` extra, or "
            "an `Authorization` extra"
        )

    connect_timeout, read_timeout = _timeouts(extra.get("timeout"), fail)
    verify_value = extra.get("verify", extra.get("verify_ssl", True))
    verify, ca_bundle = _verify(verify_value, fail)
    if not verify:
        log.warning(
            "HTTP connection %r: TLS certificate verification is off (the `verify` extra); the "
            "server is not authenticated",
            conn_id,
        )
    max_redirects = extra.get("max_redirects", 10)
    try:
        max_redirects = int(max_redirects)
    except (TypeError, ValueError):
        raise fail(f"the `max_redirects` extra must be a whole number, got {max_redirects!r}") from None

    return ConnectionSettings(
        conn_id=conn_id,
        base_url=base_url,
        origin=origin,
        login=login,
        password=connection.password or None,
        bearer_token=bearer,
        headers=tuple(headers),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        verify=verify,
        ca_bundle=ca_bundle,
        client_cert=_client_cert(extra.get("cert"), fail),
        allow_redirects=_flag(extra.get("allow_redirects", True), "allow_redirects", fail),
        max_redirects=max_redirects,
        trust_env=_flag(extra.get("trust_env", False), "trust_env", fail),
        check_response=_flag(extra.get("check_response", True), "check_response", fail),
    )


def _flag(value: Any, name: str, fail: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "", "none"):
        return False
    raise fail(f"the `{name}` extra must be true or false, got {value!r}")


def _seconds(value: Any, fail: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise fail(
            f"the `timeout` extra must be seconds (a positive number) or [connect, read], got {value!r}"
        )
    return number


def _timeouts(value: Any, fail: Any) -> tuple[float, float]:
    if value in (None, ""):
        return DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise fail(f"the `timeout` extra must be seconds or [connect, read], got {value!r}")
        return _seconds(value[0], fail), _seconds(value[1], fail)
    seconds = _seconds(value, fail)
    return seconds, seconds


def _verify(value: Any, fail: Any) -> tuple[bool, str | None]:
    if isinstance(value, bool):
        return value, None
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes", "on", ""):
        return True, None
    if text.lower() in ("false", "0", "no", "off"):
        return False, None
    path = os.path.expanduser(text)
    if not os.path.exists(path):
        raise fail(
            f"the `verify` extra names the CA bundle {text!r}, which does not exist; give the path of a "
            "PEM file (or directory of certificates) of the CAs to trust, or true for the system's"
        )
    return True, path


def _client_cert(value: Any, fail: Any) -> tuple[str, str | None] | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        return os.path.expanduser(value), None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return os.path.expanduser(value[0]), os.path.expanduser(value[1])
    raise fail(f"the `cert` extra must be a path or [certificate, key], got {type(value).__name__}")


def ssl_context(settings: ConnectionSettings) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl`` takes for this connection: a verifying context, ``True`` (aiohttp's
    default one, verifying against the system's CAs) or ``False``.

    Blocking (reads the CA bundle and the client certificate): call it in a thread.
    """
    if not settings.verify and settings.client_cert is None:
        return False
    if settings.ca_bundle is None and settings.client_cert is None:
        # aiohttp's own verifying context (the system's CAs, built once when aiohttp is imported):
        # building another costs ~50 ms of CPU per task run.
        return True
    try:
        if settings.ca_bundle is not None and os.path.isdir(settings.ca_bundle):
            context = ssl.create_default_context(capath=settings.ca_bundle)
        else:
            context = ssl.create_default_context(cafile=settings.ca_bundle)
        if not settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if settings.client_cert is not None:
            certificate, key = settings.client_cert
            context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        raise HTTPConfigError(
            f"HTTP connection {settings.conn_id!r}: cannot load its TLS files ({type(exc).__name__}: {exc}); "
            "check the `verify` (CA bundle) and `cert` extras",
            conn_id=settings.conn_id,
        ) from None
    return context


def headers_of(mapping: Mapping[str, Any] | None) -> dict[str, str]:
    """Per-request headers as text (``None`` values dropped)."""
    if not mapping:
        return {}
    return {str(k): str(v) for k, v in mapping.items() if v is not None}
