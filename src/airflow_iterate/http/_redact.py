"""Keeping credentials out of error messages and log lines.

Two layers, because either alone misses something: :func:`redact_url` removes what a URL carries
by its shape (``user:password@``, query parameters named like secrets: ``?api_key=``,
``&access_token=``, ``&sig=``), and :class:`Masker` replaces every occurrence of the secrets the
client knows (the connection's password and bearer token, the values of its secret headers, the
encoded basic credentials) wherever they appear, the start of a response body included: a server
that echoes the request's ``Authorization`` header in a 401 page does not leak it into a log. The
Airflow layer masks registered secrets again before a failure is logged or stored.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = ["MASK", "Masker", "is_secret_name", "redact_url", "url_secrets"]

MASK = "***"

#: header and parameter names whose values are credentials, whatever else they contain
_SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "key",
        "sig",
        "code",
        "jwt",
    }
)
#: words that make a name secret wherever they appear in it (x-api-key, access_token, ...)
_SECRET_WORDS = re.compile(r"token|secret|passw|api[-_]?key|auth|credential|signature|session|private")


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter named ``name`` carries a credential."""
    lowered = name.strip().lower()
    return lowered in _SECRET_NAMES or _SECRET_WORDS.search(lowered) is not None


def redact_url(url: str) -> str:
    """``url`` without a password in it: userinfo and secret-named query values become ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(name) for name, _ in pairs):
            query = "&".join(
                f"{quote(name, safe='')}={MASK if is_secret_name(name) else quote(value, safe='')}"
                for name, value in pairs
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries in its userinfo (``user:password@``), as text and as the
    basic ``Authorization`` value made of them."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return []
    if password is None:
        return []
    pair = f"{unquote(user or '')}:{unquote(password)}"
    return [unquote(password), password, base64.b64encode(pair.encode()).decode()]


class Masker:
    """Replaces known secrets in text. Built once per client from its connection's secrets."""

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        # Short values (a 1-3 character password) would mask ordinary words everywhere; they are
        # still kept out by redact_url and by never printing headers.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in self._secrets)) if self._secrets else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def with_url(self, url: str) -> Masker:
        """This masker, plus the credentials in ``url``'s userinfo (if any)."""
        extra = url_secrets(url)
        return Masker([*self._secrets, *extra]) if extra else self
