"""Writing one run's results: http.json (everything measured), http.md and http.png made from it.

The report can be made again from the JSON alone (``--rerender``), so changing how it reads
never needs another run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ._config import Sizes
from ._notes import notes
from ._report import chart, markdown
from ._results import Measurement

RESULTS = "http.json"


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
    deployment: dict[str, Any],
) -> dict[str, Any]:
    return {
        "machine": machine,
        "run_info": run_info,
        "rtt_ms": rtt_ms,
        "sizes": dataclasses.asdict(sizes),
        "links": links,
        "rows": [dataclasses.asdict(row) for row in rows],
        "deployment": deployment,
    }


def render(out: Path) -> str:
    """http.md and http.png from the http.json in ``out``; returns the markdown."""
    saved = json.loads((out / RESULTS).read_text())
    rows = [Measurement(**row) for row in saved["rows"]]
    links = [(name, rtt) for name, rtt in saved["links"]]
    machine = saved["machine"]
    deployment = saved.get("deployment", {})
    report = markdown(
        machine=machine,
        run_info=saved["run_info"],
        rows=rows,
        links=links,
        deployment=deployment,
        notes=notes(rows, Sizes(**saved["sizes"]), saved["rtt_ms"], deployment),
    )
    (out / "http.md").write_text(report)
    title = f"HTTP detail calls and the metadata DB's load — {machine['CPU']}, {machine['Date']}"
    chart(rows, out / "http.png", title)
    return report
