"""A run observer for tests: it keeps everything a run tells it."""

from __future__ import annotations

from airflow_iterate._core import RunStatistics


class RecordingObserver:
    def __init__(self) -> None:
        self.reports: list[RunStatistics] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.blocks: list[tuple[float, str]] = []
        self.retry_notes: list[str] = []

    def progress(self, stats: RunStatistics) -> None:
        self.reports.append(stats)

    def monitor_error(self, what: str, exc: BaseException) -> None:
        self.errors.append((what, exc))

    def loop_blocked(self, seconds: float, where: str) -> None:
        self.blocks.append((seconds, where))

    def retry_note(self, note: str) -> None:
        self.retry_notes.append(note)
