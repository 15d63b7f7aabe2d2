"""What the HTTP test server serves, reproducible on either side: records and the large body.

The server and the tests import the same functions, so a test checks a record or a streamed
download byte for byte without asking the server what it sent.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

__all__ = [
    "LARGE_CHUNK",
    "large_body",
    "large_body_sha256",
    "record",
    "record_bytes",
    "record_summary",
]

#: bytes per chunk of the large body (the server sends it chunk by chunk, never whole)
LARGE_CHUNK = 256 * 1024

_FILLER = "".join(random.Random(20261201).choice("abcdefghijklmnopqrstuvwxyz     ") for _ in range(16384))
_BLOCK = random.Random(20261202).randbytes(LARGE_CHUNK)


def record(record_id: int) -> dict[str, Any]:
    """Record ``record_id``'s detail document: 2–10 KB of JSON, the same on every call."""
    size = 1800 + (record_id * 2654435761) % 8000
    offset = (record_id * 40503) % (len(_FILLER) - size)
    return {
        "id": record_id,
        "name": f"record-{record_id}",
        "amount": round(((record_id * 7919) % 100000) / 100, 2),
        "tags": [f"t{record_id % 7}", f"g{record_id % 13}"],
        "text": _FILLER[offset : offset + size],
    }


@lru_cache(maxsize=8192)
def record_bytes(record_id: int) -> bytes:
    """:func:`record` as the server sends it (compact JSON, UTF-8)."""
    import json

    return json.dumps(record(record_id), separators=(",", ":")).encode()


def record_summary(record_id: int) -> dict[str, Any]:
    """How a listing names a record: its id, its name and the path of its detail."""
    return {"id": record_id, "name": f"record-{record_id}", "href": f"/records/{record_id}"}


def large_body(size: int, chunk: int = LARGE_CHUNK) -> Iterator[bytes]:
    """The large body of ``size`` bytes, chunk by chunk: a random block with its chunk number in
    front, so that a reordered, repeated or missing chunk changes the digest."""
    sent = 0
    number = 0
    while sent < size:
        n = min(chunk, size - sent)
        block = struct.pack(">Q", number) + _BLOCK[8:chunk]
        yield block[:n]
        sent += n
        number += 1


def large_body_sha256(size: int) -> str:
    """The SHA-256 (hex) of ``large_body(size)``."""
    digest = hashlib.sha256()
    for block in large_body(size):
        digest.update(block)
    return digest.hexdigest()
