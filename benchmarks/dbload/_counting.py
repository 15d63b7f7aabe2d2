"""What a DAG run writes to the metadata DB: every INSERT, UPDATE and DELETE, by table, as sent.

A listener on SQLAlchemy's ``Engine`` class sees every statement of every engine in the process
(the sync one, and the sync core of an async one). ``dag.test()`` runs its task instances in the
same process, and their calls to the execution API (XComs, the task state store, state changes)
go to an in-process ASGI app on a thread of this process, so the listener sees the task's writes
too; the benchmark cross-checks it against the writes the ledger and the checkpoint count
themselves.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine

__all__ = ["TableWrites", "WriteCounter", "row_counts"]

_WRITE = re.compile(
    r'^\s*(?:(INSERT)(?:\s+OR\s+\w+)?\s+INTO|(UPDATE)(?:\s+OR\s+\w+)?|(DELETE)\s+FROM)\s+[`"\[]?(\w+)',
    re.IGNORECASE,
)

_READ = re.compile(r'^\s*SELECT\b.*?\bFROM\s+[`"\[]?(\w+)', re.IGNORECASE | re.DOTALL)

#: the column whose bytes are "the value" of a row of these tables
VALUE_COLUMNS = {"xcom": "value", "task_state_store": "value"}
#: tables whose writes are also kept one by one, with their time and key
LOGGED_TABLES = frozenset(VALUE_COLUMNS)


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return 0


@dataclass
class TableWrites:
    """The writes sent for one table."""

    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    #: SELECT statements whose first FROM is this table (reads, not counted as writes)
    selects: int = 0
    #: rows the database reports as inserted, updated or deleted by them
    rows: int = 0
    #: bytes of every text or binary parameter sent with them (what travels to the database)
    parameter_bytes: int = 0
    #: bytes of the value column (``VALUE_COLUMNS``) of the rows inserted or updated
    value_bytes: int = 0

    @property
    def statements(self) -> int:
        return self.inserts + self.updates + self.deletes

    def as_dict(self) -> dict[str, int]:
        return {
            "inserts": self.inserts,
            "updates": self.updates,
            "deletes": self.deletes,
            "selects": self.selects,
            "statements": self.statements,
            "rows": self.rows,
            "parameter_bytes": self.parameter_bytes,
            "value_bytes": self.value_bytes,
        }


@dataclass
class WriteCounter:
    """Counts writes between :meth:`reset` and :meth:`snapshot`, from any thread."""

    tables: dict[str, TableWrites] = field(default_factory=dict)
    #: the writes to ``LOGGED_TABLES``: (seconds since reset, table, verb, key, value bytes)
    logged: list[tuple[float, str, str, str | None, int]] = field(default_factory=list)
    #: ``time.monotonic()`` at the last reset: the origin of the logged writes' times
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _installed: bool = False

    def install(self) -> None:
        if not self._installed:
            event.listen(Engine, "before_cursor_execute", self._before)
            event.listen(Engine, "after_cursor_execute", self._after)
            self._installed = True

    def reset(self) -> None:
        with self._lock:
            self.tables = {}
            self.logged = []
            self.started = time.monotonic()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: writes.as_dict() for name, writes in sorted(self.tables.items())}

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"t": t, "table": table, "verb": verb, "key": key, "value_bytes": size}
                for t, table, verb, key, size in self.logged
            ]

    # -- the listeners ------------------------------------------------------------------------

    def _before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        match = _WRITE.match(statement)
        if match is None:
            read = _READ.match(statement)
            if read is not None:
                with self._lock:
                    self.tables.setdefault(read.group(1).lower(), TableWrites()).selects += 1
            return
        insert, update, delete, table = match.groups()
        table = table.lower()
        rows = list(parameters) if executemany else [parameters]
        names = _positional_names(context)
        value_column = VALUE_COLUMNS.get(table)
        parameter_bytes = value_bytes = 0
        key: str | None = None
        for row in rows:
            for name, value in _named(row, names):
                size = _size(value)
                parameter_bytes += size
                if name == value_column and not delete:
                    value_bytes += size
                elif key is None and name is not None and (name == "key" or name.startswith("key_")):
                    key = str(value)
        verb = "insert" if insert else "update" if update else "delete"
        with self._lock:
            if table in LOGGED_TABLES:
                self.logged.append((time.monotonic() - self.started, table, verb, key, value_bytes))
            writes = self.tables.setdefault(table, TableWrites())
            if insert:
                writes.inserts += 1
            elif update:
                writes.updates += 1
            else:
                writes.deletes += 1
            writes.parameter_bytes += parameter_bytes
            writes.value_bytes += value_bytes

    def _after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        match = _WRITE.match(statement)
        if match is None:
            return
        count = getattr(cursor, "rowcount", -1)
        if count is not None and count > 0:
            with self._lock:
                self.tables.setdefault(match.group(4).lower(), TableWrites()).rows += count


def _positional_names(context: Any) -> Sequence[str] | None:
    compiled = getattr(context, "compiled", None)
    names = getattr(compiled, "positiontup", None)
    return list(names) if names else None


def _named(row: Any, names: Sequence[str] | None) -> Iterator[tuple[str | None, Any]]:
    """A parameter row's values with their bind names where they are known."""
    if isinstance(row, Mapping):
        yield from row.items()
        return
    if not isinstance(row, Sequence) or isinstance(row, str | bytes):
        return
    # insertmanyvalues batches several rows into one statement: the names no longer line up
    aligned = names is not None and len(names) == len(row)
    for position, value in enumerate(row):
        yield (names[position] if aligned and names is not None else None), value


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the metadata DB (Alembic's version table aside)."""
    with engine.connect() as conn:
        names = [name for name in inspect(conn).get_table_names() if name != "alembic_version"]
        return {
            name: int(conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one()) for name in names
        }
