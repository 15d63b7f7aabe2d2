"""The gather task: the chunks' results in input order, their summaries and failures combined."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from ..._core import (
    ItemFailure,
    ItemsFailedError,
    IterateInputError,
    RecordedItemError,
    RunOptions,
    short_repr,
)
from .._ledger_store import write_gathered_ledger
from .._paging import stream
from .._reporting import FAILURES_KEY, SUMMARY_KEY

__all__ = ["IterateGatherOperator"]

#: counters of the chunks' ``iterate_summary`` XComs that add up to the whole input's
_SUMMED_STATISTICS = ("total", "started", "succeeded", "failed", "resumed", "retried", "done")


class IterateGatherOperator(BaseOperator):
    """Concatenates the chunks' results in input order; checks failures against the whole input."""

    template_fields: ClassVar[tuple[str, ...]] = (
        "chunk_results",
        "chunk_summaries",
        "chunk_failures",
        "chunk_item_xcom_keys",
    )
    custom_operator_name = "iterate: gather chunks"
    ui_color = "#eaf4fb"

    def __init__(
        self,
        *,
        chunk_results: Any,
        chunk_summaries: Any,
        chunk_failures: Any,
        chunk_item_xcom_keys: Any,
        plan_task_id: str,
        chunks_task_id: str,
        run_options: RunOptions,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.chunks_task_id = chunks_task_id
        self.chunk_item_xcom_keys = chunk_item_xcom_keys
        self.chunk_results = chunk_results
        self.chunk_summaries = chunk_summaries
        self.chunk_failures = chunk_failures
        self.run_options = run_options

    def execute(self, context: Any) -> list[Any]:
        ti = context["ti"]
        planned = ti.xcom_pull(task_ids=self.plan_task_id)
        parts = list(stream(self.chunk_results))
        _check_complete(parts, planned)
        results = [result for part in parts for result in part]
        chunks = len(parts)
        summary: dict[str, Any] = {"chunks": chunks, **dict.fromkeys(_SUMMED_STATISTICS, 0)}
        chunk_summaries = [dict(s or {}) for s in stream(self.chunk_summaries)]
        for chunk_summary in chunk_summaries:
            for key in _SUMMED_STATISTICS:
                summary[key] += chunk_summary.get(key) or 0
        failures = [failure for part in stream(self.chunk_failures) for failure in part]
        exceeded = self.run_options.failures_exceeded(summary["failed"], len(results))
        try:
            write_gathered_ledger(
                context,
                state="failed" if exceeded else "success",
                chunk_summaries=chunk_summaries,
                planned=list(planned or []),
                failures=failures,
            )
        except Exception as exc:  # visibility only: the results still go downstream
            self.log.warning("Could not write the item ledger: %s: %s", type(exc).__name__, exc)
        ti.xcom_push(key=SUMMARY_KEY, value=summary)
        if failures:
            ti.xcom_push(key=FAILURES_KEY, value=failures)
        self._combine_item_xcoms(ti, list(planned or []))
        self.log.info(
            "Gathered %s result(s) from %d chunk(s): %s succeeded, %s resumed, %s failed",
            f"{len(results):,}",
            chunks,
            f"{summary['succeeded']:,}",
            f"{summary['resumed']:,}",
            f"{summary['failed']:,}",
        )
        # Each chunk tolerated max_failures on its own; the whole input must too.
        if exceeded:
            raise ItemsFailedError(
                [
                    ItemFailure(f["index"], f["input"], RecordedItemError(f["error"]))
                    for f in sorted(failures, key=lambda f: f["index"])
                ],
                completed=summary["succeeded"] + summary["resumed"],
                total=len(results),
            )
        return results

    def _combine_item_xcoms(self, ti: Any, planned: list[dict[str, int]]) -> None:
        """One list per key over the whole input, as an unchunked run pushes it (None: not pushed)."""
        keys = sorted({key for part in stream(self.chunk_item_xcom_keys) for key in part or ()})
        for key in keys:
            values: list[Any] = []
            for map_index, chunk in enumerate(planned):
                size = chunk["stop"] - chunk["start"]
                part = ti.xcom_pull(task_ids=self.chunks_task_id, key=key, map_indexes=map_index)
                values.extend(part if isinstance(part, list) and len(part) == size else [None] * size)
            ti.xcom_push(key=key, value=values)
        if keys:
            self.log.info("XComs pushed by items, combined over the chunks in input order: %s", keys)


def _check_complete(parts: list[Any], planned: Any) -> None:
    """Every planned chunk returned one result per item; else the concatenation would misplace items."""
    planned = list(planned or [])
    sizes = [len(part) if isinstance(part, (list, tuple)) else None for part in parts]
    expected = [chunk["stop"] - chunk["start"] for chunk in planned]
    if sizes == expected:
        return
    raise IterateInputError(
        f"the chunks returned {len(parts)} result list(s) of sizes {short_repr(sizes)} where the plan has "
        f"{len(planned)} chunk(s) of sizes {short_repr(expected)}; a chunk task instance without its "
        "results (marked successful by hand?) cannot be gathered: clear it to run it again"
    )
