"""One measured row, what follows from it, and the targets stated for ``.iterate()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks._measured import Target, is_disturbed

from ._postgres import DbLoad

#: the rows the deployment runs and the table of DB load lists, in order
DB_ROWS = ("expand", "deferrable", "iterate_deployment", "iterate")


@dataclass(frozen=True)
class Measurement:
    key: str
    number: str
    label: str
    #: "proxy" (the configured RTT) or "direct" (about 0 ms)
    link: str
    #: calls made (pages read, for a listing)
    calls: int
    #: the job this row stands for, which a smaller measurement is extrapolated to
    job: int
    bytes: int
    wall: float
    #: CPU seconds of the client processes over the timed window (the whole deployment for its rows)
    cpu: float
    peak_rss: int
    #: the HTTP server's CPU seconds
    server_cpu: float
    #: the orchestrating process, i.e. the delay proxy
    proxy_cpu: float
    #: CPU seconds the rest of the machine used meanwhile (other users' work, the OS)
    other_cpu: float
    #: PostgreSQL's CPU seconds (rows that use the metadata DB)
    db_cpu: float = 0.0
    #: what the row wrote to the metadata DB (DbLoad.as_dict()), net of the idle deployment
    db: dict[str, Any] | None = None
    #: why the row could not finish, if it could not
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.wall

    @property
    def extrapolated(self) -> bool:
        return self.calls < self.job

    @property
    def job_seconds(self) -> float:
        """The time for the whole job at this row's rate."""
        return self.job / self.calls_per_second

    @property
    def cpu_ms_per_call(self) -> float:
        return self.cpu / self.calls * 1e3

    @property
    def disturbed(self) -> bool:
        window = self.details.get("process_wall", self.wall)
        return is_disturbed(self.other_cpu, window)

    def db_load(self) -> DbLoad | None:
        return DbLoad.from_dict(self.db) if self.db is not None else None

    def db_per_1000(self) -> DbLoad | None:
        load = self.db_load()
        return load.per(self.calls) if load is not None else None


def best_raw(rows: dict[str, Measurement]) -> Measurement:
    return max((r for k, r in rows.items() if k.startswith("raw_")), key=lambda r: r.calls_per_second)


def targets(rows: dict[str, Measurement], deployment: dict[str, Measurement]) -> list[Target]:
    """The issue's targets for row 5 at its defaults (``iterate``), measured in the same run."""
    found = []
    ours = rows.get("iterate")
    if ours is not None and any(k.startswith("raw_") for k in rows):
        raw = best_raw(rows)
        found.append(
            Target(
                f"throughput vs the better raw client (raw {raw.details.get('client', raw.key)})",
                ours.calls_per_second / raw.calls_per_second,
                0.9,
            )
        )
    deferrable = deployment.get("deferrable")
    if ours is not None and deferrable is not None:
        found.append(
            Target(
                "faster per call than (2) deferrable `HttpOperator`",
                ours.calls_per_second / deferrable.calls_per_second,
                100.0,
            )
        )
    ours_db = deployment.get("iterate_deployment") or deployment.get("iterate")
    if ours_db is not None and deferrable is not None:
        theirs, mine = deferrable.db_per_1000(), ours_db.db_per_1000()
        if theirs is not None and mine is not None:
            found.append(
                Target(
                    "fewer metadata-DB rows written per 1,000 calls than (2)",
                    theirs.written / max(mine.written, 1e-9),
                    100.0,
                )
            )
    return found
