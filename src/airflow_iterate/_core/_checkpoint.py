"""Checkpoints: which items already succeeded, with their results, so a rerun skips them.

Written in batches, never per item: completed items collect in memory and :meth:`Checkpoint.flush`
(called by the run's monitor thread at most once per flush interval, and once at the end of a
failed run) writes them as ONE value when it fits, else as a few pieces of at most
``PIECE_CHARS``. Each piece is self-describing and keys are numbered, so loading reads keys in
order until one is missing and ignores an incomplete last batch (a crash mid-write).

Every row carries a CRC of its input's repr: if the input changed between attempts, the item
runs again instead of reusing a result that belongs to other data.

The store is anything with ``get(key)`` / ``set(key, value)`` / ``delete(key)`` on JSON values;
all keys live under one prefix and nothing else in the store is touched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Checkpoint", "DirectoryStateStore", "StateStore", "input_digest"]

FORMAT_VERSION = 1
#: the key (under the checkpoint's prefix) marking a run that succeeded with failed items
FINISHED_KEY = "finished"


class StateStore(Protocol):
    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


def input_digest(item: Any) -> int:
    try:
        text = repr(item)
    except Exception:
        return -1  # never equal to a stored CRC: the item simply runs again
    return zlib.crc32(text.encode("utf-8", "backslashreplace"))


def _identity(value: Any) -> Any:
    return value


class Checkpoint:
    #: characters per stored value; Airflow's task state policy limit is 64 KB per value
    PIECE_CHARS = 60_000

    def __init__(
        self,
        store: StateStore,
        namespace: str,
        *,
        encode: Callable[[Any], Any] = _identity,
        decode: Callable[[Any], Any] = _identity,
        extras: Callable[[int], Any] | None = None,
        keep_finished_runs: bool = False,
    ) -> None:
        """``extras(index)``, when given, is stored with each row (encoded like results) and comes
        back from :meth:`load` in :attr:`loaded_extras`: data an item produced besides its result.
        ``keep_finished_runs``: a run that succeeds with failed items keeps its checkpoint
        (:meth:`finish_with_failures`) instead of discarding it, so that its failed items can be
        rerun alone."""
        self.keep_finished_runs = keep_finished_runs
        self._store = store
        self._extras = extras
        self.loaded_extras: dict[int, Any] = {}
        self._prefix = f"airflow_iterate/{namespace}/"
        self._encode = encode
        self._decode = decode
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: list[tuple[int, Any, Any]] = []
        self._next_key = 0
        self._next_batch = 0
        self._completed: dict[int, tuple[int, Any]] | None = None
        # the marker of a finished run with failed items: None = not read yet, False = none
        self._finished: dict[str, Any] | bool | None = None
        #: store writes (sets and deletes) and non-empty flushes so far; show the batching
        self.writes = 0
        self.flushes = 0

    def _key(self, n: int) -> str:
        return f"{self._prefix}{n}"

    # -- reading ----------------------------------------------------------------------------------

    @property
    def completed(self) -> dict[int, tuple[int, Any]]:
        """Completed items of earlier attempts: ``{index: (input digest, result)}``, read once."""
        if self._completed is None:
            self._completed = self.load()
        return self._completed

    def load(self) -> dict[int, tuple[int, Any]]:
        """Read the completed items of earlier attempts from the store (see :attr:`completed`)."""
        pieces: list[dict[str, Any]] = []
        n = 0
        while True:
            piece = self._store.get(self._key(n))
            if not isinstance(piece, dict) or piece.get("v") != FORMAT_VERSION:
                break
            pieces.append(piece)
            n += 1
        self._next_key = n
        done: dict[int, tuple[int, Any]] = {}
        batches: dict[int, list[dict[str, Any]]] = {}
        for piece in pieces:
            batches.setdefault(piece["b"], []).append(piece)
        for batch_no, parts in sorted(batches.items()):
            self._next_batch = batch_no + 1
            if len(parts) != parts[0]["n"]:
                continue  # the attempt died while writing this batch
            blob = "".join(p["d"] for p in sorted(parts, key=lambda p: p["i"]))
            rows = json.loads(zlib.decompress(base64.b64decode(blob)))
            for index, digest, result in zip(rows["i"], rows["h"], rows["r"], strict=True):
                done[index] = (digest, self._decode(result))
            for index, extra in rows.get("x", {}).items():
                self.loaded_extras[int(index)] = self._decode(extra)
        self._completed = done
        return done

    # -- writing ----------------------------------------------------------------------------------

    def record(self, index: int, item: Any, result: Any) -> None:
        with self._lock:
            self._buffer.append((index, item, result))

    def flush(self) -> int:
        """Write what completed since the last flush; returns the number of items written."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            indexes: list[int] = []
            digests: list[int] = []
            results: list[Any] = []
            extras: dict[str, Any] = {}
            for index, item, result in batch:
                try:
                    encoded = self._encode(result)
                    extra = self._extras(index) if self._extras is not None else None
                    encoded_extra = None if extra is None else self._encode(extra)
                    json.dumps([encoded, encoded_extra])
                except Exception:  # not stored: after a crash this item runs again
                    continue
                indexes.append(index)
                digests.append(input_digest(item))
                results.append(encoded)
                if encoded_extra is not None:
                    extras[str(index)] = encoded_extra
            rows: dict[str, Any] = {"i": indexes, "h": digests, "r": results}
            if extras:
                rows["x"] = extras
            payload = json.dumps(rows, separators=(",", ":"))
            blob = base64.b64encode(zlib.compress(payload.encode(), 6)).decode("ascii")
            chunks = [blob[i : i + self.PIECE_CHARS] for i in range(0, len(blob), self.PIECE_CHARS)] or [""]
            batch_no = self._next_batch
            for part, chunk in enumerate(chunks):
                piece = {"v": FORMAT_VERSION, "b": batch_no, "i": part, "n": len(chunks), "d": chunk}
                self._store.set(self._key(self._next_key), piece)
                self._next_key += 1
                self.writes += 1
            self._next_batch += 1
            self.flushes += 1
            return len(indexes)

    def discard(self) -> None:
        """Delete every key of this checkpoint (after a successful run: a rerun starts afresh)."""
        with self._flush_lock:
            with self._lock:
                self._buffer = []
            for n in range(self._next_key):
                self._store.delete(self._key(n))
                self.writes += 1
            self._next_key = 0
            self._next_batch = 0
            self._completed = {}
            self.loaded_extras = {}
            if self._finished is not False:
                self._store.delete(self._prefix + FINISHED_KEY)
                self.writes += 1
                self._finished = False

    # -- a run that succeeded with failed items ---------------------------------------------------

    def finish_with_failures(self, failed: int) -> None:
        """Keep the checkpoint of a run that succeeded with ``failed`` tolerated failures.

        Its succeeded items are written and a marker says the run finished: a later run of the task
        can rerun only the failed items (:meth:`finished` tells it there is something to reuse),
        or discard the checkpoint and run everything, as a plain rerun would.
        """
        self.flush()
        with self._flush_lock:
            self._store.set(self._prefix + FINISHED_KEY, {"v": FORMAT_VERSION, "failed": failed})
            self.writes += 1
            self._finished = {"v": FORMAT_VERSION, "failed": failed}

    def finished(self) -> dict[str, Any] | None:
        """The marker of an earlier run that succeeded with failed items, if there was one."""
        if self._finished is None:
            marker = self._store.get(self._prefix + FINISHED_KEY)
            valid = isinstance(marker, dict) and marker.get("v") == FORMAT_VERSION
            self._finished = marker if valid else False
        return self._finished if isinstance(self._finished, dict) else None

    def reopen(self) -> None:
        """Resume from a finished checkpoint: the failed items run again, the others are reused."""
        if self._finished is None:
            self.finished()
        if self._finished:
            self._store.delete(self._prefix + FINISHED_KEY)
            self.writes += 1
        self._finished = False


class DirectoryStateStore:
    """A state store in a local (or mounted) directory: one JSON file per key, written atomically.

    Used where Airflow offers no task state store; it only helps a rerun on a machine that sees
    the same directory. File names are a hash of the key, so that two keys never share a file
    (DAG ``sales`` + run ``daily_2024`` and DAG ``sales_daily`` + run ``2024`` would, by a
    readable name); the directory and the files are the owner's only: results are data.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:60]
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.directory / f"{readable}.{digest}.json"

    def get(self, key: str) -> Any:
        try:
            return json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None

    def set(self, key: str, value: Any) -> None:
        path = self._path(key)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(json.dumps(value))
        tmp.replace(path)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
