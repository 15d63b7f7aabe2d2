"""Protection of the POST route against cross-site requests.

Airflow's session cookie is ``SameSite=Lax``, which already keeps it off a cross-site POST; the
route does not rely on that alone. It requires a token that only a page of this app could have
read (an HMAC of the user's id and the time, keyed with ``[api] secret_key``, valid for
:data:`TOKEN_TTL` seconds) in a request header, which a cross-site form cannot send and a
cross-site script cannot send without a CORS preflight; and a request whose ``Origin`` or
``Sec-Fetch-Site`` says it came from another site is refused whatever it carries.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["HEADER", "TOKEN_TTL", "cross_site", "make_token", "valid_token"]

HEADER = "X-Iterate-CSRF"
TOKEN_TTL = 12 * 3600


def _signature(secret: str, user_id: str, issued: int) -> str:
    message = f"airflow-iterate/rerun\n{user_id}\n{issued}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def make_token(secret: str, user_id: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_signature(secret, user_id, issued)}"


def valid_token(secret: str, user_id: str, token: str | None, now: float | None = None) -> bool:
    if not token or "." not in token:
        return False
    issued_text, signature = token.split(".", 1)
    if not issued_text.isdigit():
        return False
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    if age < -60 or age > TOKEN_TTL:
        return False
    return hmac.compare_digest(signature, _signature(secret, user_id, issued))


def cross_site(headers: Mapping[str, str], hosts: Iterable[str]) -> bool:
    """Whether the browser says this request came from a page of another site than ``hosts``.

    ``hosts`` (``host[:port]``) are the names this server answers to: the ``Host`` header, a
    proxy's ``X-Forwarded-Host``, the host of ``[api] base_url``.
    """
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin == "null":  # a sandboxed or opaque context: never this app's own page
        return True
    return urlsplit(origin).netloc.lower() not in {host.lower() for host in hosts if host}
