"""Rerunning only the failed items of a task instance: the request, and what a run does with it.

A run that succeeds with failed items (within ``max_failures``) keeps its checkpoint, marked
finished. The next run of that task instance then either reruns only the failed items, when a
request is waiting in its task state store under :data:`RERUN_REQUEST_KEY` (put there through the
REST API before the task instance is cleared: ``python -m airflow_iterate rerun-failed``), or
discards the checkpoint and runs every item, as a plain clear always has.
"""

from __future__ import annotations

from typing import Any

from .._core import Checkpoint

__all__ = ["RERUN_REQUEST_KEY", "apply_rerun_request"]

#: the task state store key a "rerun the failed items" request is written to
RERUN_REQUEST_KEY = "airflow_iterate/rerun_failed"


def apply_rerun_request(checkpoint: Checkpoint, store: Any, log: Any) -> None:
    """Reuse a finished checkpoint if a rerun of its failed items was requested, else discard it."""
    request = store.get(RERUN_REQUEST_KEY)
    if request is not None:
        store.delete(RERUN_REQUEST_KEY)  # one request, one run
    marker = checkpoint.finished()
    if marker is None:
        if request is not None:
            log.info("A rerun of failed items was requested, but no earlier run finished with failed items")
        return
    checkpoint.load()
    if request is not None:
        checkpoint.reopen()
        log.info(
            "Rerunning only the %d item(s) that failed in the previous run, as requested; the %d other "
            "item(s) reuse their results",
            marker.get("failed", 0),
            len(checkpoint.completed),
        )
        return
    checkpoint.discard()
    log.info(
        "The previous run succeeded with %d failed item(s); this run starts over and runs every item "
        "(to rerun only the failed ones: python -m airflow_iterate rerun-failed)",
        marker.get("failed", 0),
    )
