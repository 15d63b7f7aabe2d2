"""What an iterated task tells its users: log lines, XComs and metrics."""

from __future__ import annotations

from typing import Any

from .._core import ItemFailure, RunStatistics
from ._compat import stats_module

#: XCom keys pushed next to ``return_value``
SUMMARY_KEY = "iterate_summary"
FAILURES_KEY = "iterate_failures"

#: failures listed in the log and in the failures XCom (all are counted in the summary)
MAX_REPORTED_FAILURES = 1000
#: longer per-task metric names are not sent (Airflow refuses names over 250 characters)
MAX_METRIC_PREFIX = 200


class Reporter:
    def __init__(self, log: Any, context: Any) -> None:
        self._log = log
        self._context = context
        ti = context["ti"]
        self._tags = {"dag_id": ti.dag_id, "task_id": ti.task_id}
        map_index = getattr(ti, "map_index", None)
        mapped = isinstance(map_index, int) and map_index >= 0
        if mapped:  # a chunk: each chunk running at once reports its own progress
            self._tags["map_index"] = str(map_index)
        # Plain StatsD drops tags: as with Airflow's own per-task metrics, a second name carries
        # the task (and the chunk), so that two iterated tasks never overwrite each other's gauges.
        prefix = f"iterate.{ti.dag_id}.{ti.task_id}" + (f".{map_index}" if mapped else "")
        self._task_prefix = prefix if len(prefix) <= MAX_METRIC_PREFIX else None
        self._stats = stats_module()

    def progress(self, stats: RunStatistics) -> None:
        self._log.info("Iterate progress: %s", stats.describe())
        self._gauges(stats)

    def loop_blocked(self, seconds: float, where: str) -> None:
        self._log.warning(
            "The event loop was blocked for %.2fs at %s: every async item waited meanwhile. Move "
            "blocking calls off the loop (await asyncio.to_thread(...)) or use async APIs",
            seconds,
            where,
        )

    def retry_note(self, note: str) -> None:
        self._log.info("Iterate retries: %s", note)

    def monitor_error(self, what: str, exc: BaseException) -> None:
        self._log.warning("Iterate %s failed (the run goes on): %s: %s", what, type(exc).__name__, exc)

    def finished(self, stats: RunStatistics, failures: list[ItemFailure]) -> None:
        self._log.info("Iterate finished: %s, in %.2fs", stats.describe(), stats.elapsed)
        for failure in failures[:MAX_REPORTED_FAILURES]:
            self._log.warning("Iterate item failed: %s", failure.describe())
        if len(failures) > MAX_REPORTED_FAILURES:
            self._log.warning("... and %d more failed items", len(failures) - MAX_REPORTED_FAILURES)
        self._gauges(stats)
        ti = self._context["ti"]
        ti.xcom_push(key=SUMMARY_KEY, value=stats.as_dict())
        if failures:
            ti.xcom_push(
                key=FAILURES_KEY,
                value=[
                    {
                        "index": f.index,
                        "input": f.input_repr,
                        "error": f.error,
                    }
                    for f in failures[:MAX_REPORTED_FAILURES]
                ],
            )

    def _gauges(self, stats: RunStatistics) -> None:
        if self._stats is None:
            return
        for name, value in (
            ("done", stats.done),
            ("succeeded", stats.succeeded),
            ("failed", stats.failed),
            ("resumed", stats.resumed),
            ("retried", stats.retried),
            ("in_flight", stats.in_flight),
            ("rate", stats.rate),
            *((("limit", stats.limit), ("overloaded", stats.overloaded)) if stats.limit is not None else ()),
        ):
            self._stats.gauge(f"iterate.{name}", value, tags=self._tags)
            if self._task_prefix is not None:
                self._stats.gauge(f"{self._task_prefix}.{name}", value)
