"""One measured row, what follows from it, and the targets stated for ``.iterate()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks._measured import Target, is_disturbed

from ._config import PROPOSAL_FILES


@dataclass(frozen=True)
class Measurement:
    key: str
    number: str
    label: str
    #: "proxy" (the configured RTT) or "direct" (about 0 ms)
    link: str
    files: int
    bytes: int
    wall: float
    #: CPU seconds of the client processes over the timed window
    cpu: float
    #: peak RSS of the client processes (for a subprocess its whole life, Airflow's import included)
    peak_rss: int
    sshd_cpu: float
    #: the orchestrating process, i.e. the delay proxy
    proxy_cpu: float
    #: CPU seconds the rest of the machine used meanwhile (other users' work, the OS)
    other_cpu: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def files_per_second(self) -> float:
        return self.files / self.wall

    @property
    def extrapolated(self) -> bool:
        return self.files < PROPOSAL_FILES

    @property
    def proposal_seconds(self) -> float:
        """The time for the proposal's 17,000 files at this row's rate."""
        return PROPOSAL_FILES / self.files_per_second

    @property
    def cpu_ms_per_file(self) -> float:
        return self.cpu / self.files * 1e3

    @property
    def disturbed(self) -> bool:
        window = self.details.get("process_wall", self.wall)
        return is_disturbed(self.other_cpu, window)


def best_provider(rows: dict[str, Measurement]) -> Measurement:
    sized = [row for key, row in rows.items() if key.startswith("provider_") and key != "provider_default"]
    return max(sized, key=lambda row: row.files_per_second)


def targets(rows: dict[str, Measurement], key: str) -> list[Target]:
    """The stated targets for row ``key`` (``.iterate()`` at its defaults)."""
    ours = rows[key].files_per_second
    best = best_provider(rows)
    default = rows["provider_default"]
    found = [
        Target("throughput vs (6) raw asyncssh, one process", ours / rows["raw"].files_per_second, 0.9),
        Target(
            f"faster than (4) provider pool at its best size ({best.details['pool_size']})",
            ours / best.files_per_second,
            3.0,
        ),
        Target(
            f"faster than (4) provider pool at its default size ({default.details['pool_size']})",
            ours / default.files_per_second,
            30.0,
        ),
    ]
    if "expand" in rows:
        found.append(
            Target(
                "faster per file than (1) mapped SFTPOperator", ours / rows["expand"].files_per_second, 300.0
            )
        )
    return found
