"""Reading item ledgers from Airflow's metadata DB: a few rows per request, never one per item.

Where each Airflow version keeps them: the task state store (``task_state_store``, 3.3+) under
``airflow_iterate/ledger`` and ``airflow_iterate/ledger/failed/<n>``, or the task instance's XComs
``iterate_ledger`` and ``iterate_ledger_failed_<n>`` (3.1 and 3.2, and any run that wrote them
there). Every function takes the request's session; the models are Airflow's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from sqlalchemy import Text, and_, cast, func, or_, select

from ._ledger import (
    STATE_STORE_LEDGER_KEY,
    STATE_STORE_PAGE_PREFIX,
    XCOM_LEDGER_KEY,
    XCOM_PAGE_PREFIX,
    page_key,
    page_number,
)

try:  # Airflow 3.3+
    from airflow.models.task_state_store import TaskStateStoreModel
except ImportError:  # pragma: no cover - Airflow 3.1, 3.2
    TaskStateStoreModel = None

__all__ = ["HAS_STATE_STORE", "LedgerLocation", "TaskInstanceKey", "find_ledger", "run_ledgers"]

HAS_STATE_STORE = TaskStateStoreModel is not None
#: failure pages read per query while searching
_BATCH = 25


@dataclass(frozen=True)
class TaskInstanceKey:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


def task_instance(session: Any, key: TaskInstanceKey) -> dict[str, Any] | None:
    row = session.execute(
        select(
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.operator,
            TaskInstance.start_date,
            TaskInstance.end_date,
        ).where(
            TaskInstance.dag_id == key.dag_id,
            TaskInstance.run_id == key.run_id,
            TaskInstance.task_id == key.task_id,
            TaskInstance.map_index == key.map_index,
        )
    ).one_or_none()
    if row is None:
        return None
    return {
        "state": None if row.state is None else str(getattr(row.state, "value", row.state)),
        "try_number": row.try_number,
        "operator": row.operator,
        "start_date": row.start_date.isoformat() if row.start_date else None,
        "end_date": row.end_date.isoformat() if row.end_date else None,
    }


def run_task_instances(session: Any, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.operator,
        ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    ).all()
    return {
        (row.task_id, row.map_index): {
            "state": None if row.state is None else str(getattr(row.state, "value", row.state)),
            "try_number": row.try_number,
            "operator": row.operator,
        }
        for row in rows
    }


class LedgerLocation:
    """One task instance's ledger in one of the two places: its document and its failure pages."""

    def __init__(self, session: Any, key: TaskInstanceKey, where: str, dag_run_pk: int | None = None) -> None:
        self._session = session
        self.key = key
        self.where = where  # "task_state_store" or "xcom"
        if where == "task_state_store":
            model: Any = TaskStateStoreModel
            self._document_key, self._prefix = STATE_STORE_LEDGER_KEY, STATE_STORE_PAGE_PREFIX
            # Its unique index (dag_run_id, task_id, map_index, key) finds a key without a scan.
            self._scope = and_(
                model.dag_run_id == dag_run_pk, model.task_id == key.task_id, model.map_index == key.map_index
            )
        else:
            model = XComModel
            self._document_key, self._prefix = XCOM_LEDGER_KEY, XCOM_PAGE_PREFIX
            self._scope = and_(
                model.dag_id == key.dag_id,
                model.run_id == key.run_id,
                model.task_id == key.task_id,
                model.map_index == key.map_index,
            )
        self._model = model
        self._key_column, self._value_column = model.key, model.value

    def _decode(self, row: Any) -> Any:
        if self.where == "task_state_store":
            return json.loads(row.value)
        return XComModel.deserialize_value(row)

    def document(self) -> dict[str, Any] | None:
        is_document = self._key_column == self._document_key
        row = self._session.execute(
            select(self._value_column.label("value")).where(self._scope, is_document)
        ).one_or_none()
        if row is None:
            return None
        value = self._decode(row)
        return value if isinstance(value, dict) else None

    def pages(self, numbers: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The failure pages ``numbers`` that exist, by number."""
        if not numbers:
            return {}
        keys = [page_key(self._prefix, n) for n in numbers]
        rows = self._session.execute(
            select(self._key_column.label("key"), self._value_column.label("value")).where(
                self._scope, self._key_column.in_(keys)
            )
        ).all()
        found: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            number = page_number(self._prefix, row.key)
            value = self._decode(row)
            if number is not None and isinstance(value, list):
                found[number] = value
        return found

    def page_numbers_containing(
        self, fragments: Sequence[str], pages: int, *, ignore_case: bool = True
    ) -> list[int]:
        """Pages below ``pages`` whose stored text contains any of ``fragments`` (``LIKE`` patterns
        without their ``%``, ``!`` escaping; lower-cased when ``ignore_case``), in page order. The
        database reads the text; no page is decoded."""
        text: Any = cast(self._value_column, Text)
        if ignore_case and self._session.get_bind().dialect.name != "sqlite":
            # SQLite's LIKE already ignores the case of ASCII letters, all a fragment may hold;
            # elsewhere compare lower-cased text.
            text = func.lower(text)
        matches = or_(*(text.like(f"%{fragment}%", escape="!") for fragment in fragments))
        rows = self._session.execute(
            select(self._key_column.label("key")).where(
                self._scope, self._key_column.like(f"{_escaped(self._prefix)}%", escape="!"), matches
            )
        ).all()
        numbers = (page_number(self._prefix, row.key) for row in rows)
        return sorted(n for n in numbers if n is not None and n < pages)

    def index_fragments(self, index: int) -> list[str]:
        """How a failure's entry for item ``index`` starts in the stored text (``json.dumps``; an
        XCom may hold it encoded once more, as a string)."""
        fragments = [f'"index": {index},']
        if self.where == "xcom":
            fragments.append(f'\\"index\\": {index},')
        return fragments

    def iter_pages(self, numbers: Sequence[int]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Pages in the order given, read a batch at a time (a search stops once it has enough)."""
        for start in range(0, len(numbers), _BATCH):
            batch = numbers[start : start + _BATCH]
            found = self.pages(batch)
            for number in batch:
                if number in found:
                    yield number, found[number]


def _escaped(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def dag_run_pk(session: Any, dag_id: str, run_id: str) -> int | None:
    pk: int | None = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return pk


def find_ledger(session: Any, key: TaskInstanceKey) -> tuple[LedgerLocation | None, dict[str, Any] | None]:
    """The ledger of a task instance and its document: the state store first, then XComs."""
    if HAS_STATE_STORE:
        pk = dag_run_pk(session, key.dag_id, key.run_id)
        if pk is not None:
            location = LedgerLocation(session, key, "task_state_store", pk)
            document = location.document()
            if document is not None:
                return location, document
    location = LedgerLocation(session, key, "xcom")
    document = location.document()
    return (location, document) if document is not None else (None, None)


def run_ledgers(session: Any, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Every ledger document of a DAG run, by ``(task_id, map_index)``: one query per place."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    if HAS_STATE_STORE:
        model: Any = TaskStateStoreModel
        pk = dag_run_pk(session, dag_id, run_id)
        rows = session.execute(
            select(model.task_id, model.map_index, model.value).where(
                model.dag_run_id == pk, model.key == STATE_STORE_LEDGER_KEY
            )
        ).all()
        for row in rows:
            value = json.loads(row.value)
            if isinstance(value, dict):
                found[(row.task_id, row.map_index)] = value
    rows = session.execute(
        select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
            XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == XCOM_LEDGER_KEY
        )
    ).all()
    for row in rows:
        value = XComModel.deserialize_value(row)
        if isinstance(value, dict):
            found.setdefault((row.task_id, row.map_index), value)
    return found
