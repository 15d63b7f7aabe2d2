"""The item ledger as the Items tab reads it: its public format, and views computed from it.

The ledger is written by ``airflow_iterate`` (``_core/_ledger.py``, ``_airflow/_ledger_store.py``)
and documented in the README ("The item ledger"): one bounded document per task instance, its
failed items in pages of ``failures_per_page``. Its keys are repeated here, not imported: importing
``airflow_iterate`` extends the Task SDK, which the API server has no use for (a test checks that
both sides agree). Nothing here touches Airflow or the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "FINISHED_STATES",
    "LEDGER_SCHEMA",
    "RERUN_REQUEST_KEY",
    "STATE_STORE_LEDGER_KEY",
    "XCOM_LEDGER_KEY",
    "Overview",
    "entry_matches",
    "like_fragment",
    "locate",
    "overview",
    "page_key",
    "page_number",
    "pages_for",
]

LEDGER_SCHEMA = "airflow-iterate/item-ledger"
#: Airflow 3.3+: the task state store's keys
STATE_STORE_LEDGER_KEY = "airflow_iterate/ledger"
STATE_STORE_PAGE_PREFIX = "airflow_iterate/ledger/failed/"
#: Airflow 3.1 and 3.2: XComs of the task instance
XCOM_LEDGER_KEY = "iterate_ledger"
XCOM_PAGE_PREFIX = "iterate_ledger_failed_"
#: what ``python -m airflow_iterate rerun-failed`` (and the tab's button) puts in the state store
RERUN_REQUEST_KEY = "airflow_iterate/rerun_failed"
#: task instance states after which nothing changes until someone clears it
FINISHED_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
#: the operators ``.iterate()`` puts in a DAG (``task_type``, kept in each task instance's row)
ITERATE_OPERATORS = frozenset(
    {
        "_PythonIterateOperator",
        "_ClassicIterateOperator",
        "IterateOperator",
        "ChunkedPythonIterateOperator",
        "ChunkedClassicIterateOperator",
        "IterateGatherOperator",
        "IteratePlanOperator",
    }
)


def page_key(prefix: str, page: int) -> str:
    return f"{prefix}{page}"


def page_number(prefix: str, key: str) -> int | None:
    """The page a key holds, or None for any other key."""
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    return int(rest) if rest.isdigit() else None


def pages_for(offset: int, limit: int, per_page: int, pages: int) -> range:
    """The failure pages holding failures ``[offset, offset + limit)``, within the ``pages`` written."""
    if limit <= 0 or per_page <= 0:
        return range(0)
    first = offset // per_page
    last = min(pages - 1, (offset + limit - 1) // per_page)
    return range(first, last + 1) if last >= first else range(0)


def entry_matches(entry: Mapping[str, Any], needle: str) -> bool:
    """A failed item whose label contains ``needle`` (already lower-cased)."""
    return needle in str(entry.get("label", "")).lower()


def like_fragment(term: str) -> str | None:
    """The text a failure page's stored JSON holds wherever a label contains ``term``, for ``LIKE``.

    Only for printable ASCII without quotes or backslashes, which JSON (even encoded twice, as
    some XComs are) stores as they are. Lower-cased, with ``!`` escaping ``%``, ``_`` and
    itself (``LIKE ... ESCAPE '!'``). None: the term needs every page read instead.
    """
    if not term or not all(" " <= ch <= "~" for ch in term) or '"' in term or "\\" in term:
        return None
    return term.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _in_ranges(index: int, ranges: Iterable[Sequence[int]]) -> bool:
    return any(start <= index < stop for start, stop in ranges)


def locate(document: Mapping[str, Any], index: int, failure: Mapping[str, Any] | None) -> dict[str, Any]:
    """Where item ``index`` (its place in the whole input) stands, from the document alone.

    ``failure`` is its entry in the failure pages, if it is in one. Succeeded items are known by
    their position only: the ledger keeps no label for them.
    """
    first = int(document.get("first_index") or 0)
    total = document.get("total")
    if index < first or (total is not None and index >= first + int(total)):
        return {"index": index, "status": "outside", "detail": "not an item of this task instance"}
    if failure is not None:
        return {"index": index, "status": "failed", "failure": dict(failure)}
    for item in document.get("in_flight") or ():
        if item.get("index") == index:
            return {"index": index, "status": "running", "item": dict(item)}
    if _in_ranges(index, document.get("done_ranges") or ()):
        return {"index": index, "status": "succeeded"}
    if not document.get("done_ranges_complete", True):
        return {"index": index, "status": "unknown", "detail": "the ledger lists only the first ranges"}
    if document.get("state") == "running":
        running = document.get("counts", {}).get("in_flight", 0) > len(document.get("in_flight") or ())
        status = "running_or_pending" if running else "pending"
        return {"index": index, "status": status}
    return {"index": index, "status": "not_run", "detail": f"the run ended {document.get('state')}"}


Overview = dict[str, Any]

_COUNTS = ("done", "succeeded", "failed", "resumed", "retried", "in_flight")


def _summary(
    task_id: str,
    map_index: int,
    document: Mapping[str, Any] | None,
    ti: Mapping[str, Any] | None,
) -> dict[str, Any]:
    counts = dict.fromkeys(_COUNTS, 0)
    if document:
        counts.update({k: int(v or 0) for k, v in (document.get("counts") or {}).items() if k in counts})
    chunk = (document or {}).get("chunk") or {}
    return {
        "task_id": task_id,
        "map_index": map_index,
        "ti_state": (ti or {}).get("state"),
        "try_number": (ti or {}).get("try_number"),
        "ledger_try": (document or {}).get("try_number"),
        "state": (document or {}).get("state"),
        "total": (document or {}).get("total"),
        "rate": (document or {}).get("rate"),
        "eta_seconds": (document or {}).get("eta_seconds"),
        "updated_at": (document or {}).get("updated_at"),
        "start": chunk.get("start"),
        "stop": chunk.get("stop"),
        "counts": counts,
    }


def overview(
    documents: Mapping[tuple[str, int], Mapping[str, Any]],
    task_instances: Mapping[tuple[str, int], Mapping[str, Any]],
) -> Overview:
    """A DAG run's iterated tasks: one row per task, a chunked task with its chunks and totals.

    ``documents`` are the ledgers by ``(task_id, map_index)``; ``task_instances`` every task
    instance of the run (``state``, ``try_number``, ``operator``), so that chunks not started
    yet are listed too. A chunked task is the group ``G`` of ``G.plan``, ``G.chunks`` (mapped)
    and ``G.gather``.
    """
    groups: dict[str, dict[str, Any]] = {}
    tasks: list[dict[str, Any]] = []
    chunk_ids = {
        task_id
        for (task_id, map_index), ti in task_instances.items()
        if map_index >= 0 and ti.get("operator") in ITERATE_OPERATORS
    } | {task_id for (task_id, map_index), doc in documents.items() if doc.get("chunk") is not None}
    for task_id in sorted(chunk_ids):
        group = task_id.rsplit(".", 1)[0] if task_id.endswith(".chunks") else task_id
        indexes = sorted(
            {m for (t, m) in task_instances if t == task_id and m >= 0}
            | {m for (t, m) in documents if t == task_id and m >= 0}
        )
        chunks = [
            _summary(task_id, m, documents.get((task_id, m)), task_instances.get((task_id, m)))
            for m in indexes
        ]
        gather_id = f"{group}.gather"
        gather = documents.get((gather_id, -1))
        totals = dict.fromkeys(_COUNTS, 0)
        for chunk in chunks:
            for key in _COUNTS:
                totals[key] += chunk["counts"][key]
        known = [c["total"] for c in chunks]
        total = sum(int(t) for t in known) if known and all(t is not None for t in known) else None
        if gather and gather.get("total") is not None:
            total = gather["total"]
        states = {c["state"] for c in chunks}
        gather_ti = task_instances.get((gather_id, -1))
        groups[group] = {
            "group": group,
            "chunks_task_id": task_id,
            "gather_task_id": gather_id,
            "gather": _summary(gather_id, -1, gather, gather_ti) if gather else None,
            "chunks": chunks,
            "total": total,
            "counts": totals,
            "rate": round(sum(float(c["rate"] or 0) for c in chunks if c["state"] == "running"), 3),
            "state": "running" if "running" in states or None in states else _worst(states),
        }
    gathers = {g["gather_task_id"] for g in groups.values()}
    for (task_id, map_index), document in sorted(documents.items()):
        if task_id in chunk_ids or task_id in gathers:
            continue
        tasks.append(_summary(task_id, map_index, document, task_instances.get((task_id, map_index))))
    for (task_id, map_index), ti in sorted(task_instances.items()):
        if (task_id, map_index) in documents or task_id in chunk_ids or task_id in gathers:
            continue
        if ti.get("operator") in ITERATE_OPERATORS and ti.get("operator") != "IteratePlanOperator":
            tasks.append(_summary(task_id, map_index, None, ti))
    return {"tasks": tasks, "chunked": list(groups.values())}


def _worst(states: set[Any]) -> str | None:
    for state in ("failed", "cancelled", "success"):
        if state in states:
            return state
    return None
