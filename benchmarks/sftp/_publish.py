"""Writing one run's results: sftp.json (everything measured), sftp.md and sftp.png made from it.

The report can be made again from the JSON alone (``--rerender``), so changing how it reads
never needs another 17-minute run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ._config import PROPOSAL_FILES, Sizes
from ._notes import notes
from ._report import chart, markdown
from ._results import Measurement

RESULTS = "sftp.json"


def save(out: Path, saved: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps(saved, indent=1))


def snapshot(
    *,
    machine: dict[str, str],
    run_info: dict[str, str],
    rtt_ms: float,
    sizes: Sizes,
    links: list[tuple[str, float]],
    rows: list[Measurement],
) -> dict[str, Any]:
    return {
        "machine": machine,
        "run_info": run_info,
        "rtt_ms": rtt_ms,
        "sizes": dataclasses.asdict(sizes),
        "links": links,
        "rows": [dataclasses.asdict(row) for row in rows],
    }


def render(out: Path) -> str:
    """sftp.md and sftp.png from the sftp.json in ``out``; returns the markdown."""
    saved = json.loads((out / RESULTS).read_text())
    rows = [Measurement(**row) for row in saved["rows"]]
    links = [(name, rtt) for name, rtt in saved["links"]]
    machine = saved["machine"]
    report = markdown(
        machine=machine,
        run_info=saved["run_info"],
        rows=rows,
        links=links,
        notes=notes(rows, Sizes(**saved["sizes"]), saved["rtt_ms"]),
    )
    (out / "sftp.md").write_text(report)
    title = f"{PROPOSAL_FILES:,} small files over SFTP — {machine['CPU']}, {machine['Date']}"
    chart(rows, links, out / "sftp.png", title)
    return report
