"""scaleout.md and scaleout.png from scaleout.json (``--rerender`` remakes them without measuring)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks._markdown import facts, table

from ._measure import VARIANTS

RESULTS = "scaleout.json"
HOST_COLORS = {"worker-a": "#1f77b4", "worker-b": "#ff7f0e"}


def best_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The fastest run of each variant, by the time its files took to download."""
    best: dict[str, dict[str, Any]] = {}
    for run in runs:
        current = best.get(run["dag_id"])
        if current is None or run["fetch_seconds"] < current["fetch_seconds"]:
            best[run["dag_id"]] = run
    return best


def _where(run: dict[str, Any]) -> str:
    return ", ".join(
        f"{'chunk ' + str(ti['map_index']) if ti['map_index'] >= 0 else 'the task'} on {ti['hostname']}"
        for ti in run["task_instances"]
    )


def markdown(saved: dict[str, Any]) -> str:
    files = saved["files"]
    best = best_runs(saved["runs"])
    one_task = best["scaleout_one_task"]["fetch_seconds"]
    one_worker = best["scaleout_chunks_one_worker"]["fetch_seconds"]
    two_workers = best["scaleout_chunks_two_workers"]["fetch_seconds"]
    lines = [
        "# Scale-out: the SFTP job chunked over two Celery workers against one",
        "",
        *facts({**saved["machine"], **saved["run_info"]}),
        "",
        f"**Two workers against one, same run: {one_worker / two_workers:.2f}x faster** than the same "
        f"chunked DAG on one worker, {one_task / two_workers:.2f}x faster than one unchunked task "
        f"instance on one worker ({files:,} files).",
        "",
    ]
    header = [
        "variant",
        "where the downloads ran",
        "download s",
        "files/s",
        "DAG run s",
        "vs one task",
        "workers CPU s",
        "sshd CPU s",
    ]
    rows = [
        [
            label,
            _where(run),
            f"{run['fetch_seconds']:.1f}",
            f"{files / run['fetch_seconds']:,.0f}",
            f"{run['dag_run_seconds']:.1f}",
            f"{one_task / run['fetch_seconds']:.2f}x",
            f"{run['workers_cpu']:.1f}",
            f"{run['sshd_cpu']:.1f}",
        ]
        for dag_id, label in VARIANTS.items()
        for run in [best[dag_id]]
    ]
    lines += table(header, rows, "llrrrrrr")
    repeats = len(saved["runs"]) // len(VARIANTS)
    lines += [
        "",
        f"Each variant ran {repeats} {'time' if repeats == 1 else 'times'}, in turns; the table shows "
        "each one's fastest run (all runs are in scaleout.json). *download s*: from the first "
        "downloading task instance's start to the last one's end (REST API dates), i.e. without the "
        "listing task, the `plan` and `gather` tasks and the scheduling around them, which *DAG run "
        "s* includes. *workers CPU s*: both Celery workers' process trees (task processes included) "
        "over the DAG run. Each item is `download_bytes` through `SFTPPool.shared()` at the iterate "
        "defaults (128 in flight per task instance).",
        "",
        "Everything runs on this one machine: the two workers share its cores with each other, with "
        "sshd, the delay proxy and the scheduler, so two workers cannot be twice as fast here when one "
        "task instance already keeps a core busy. On separate machines each worker brings its own "
        "cores, and the server's capacity becomes the limit.",
        "",
    ]
    return "\n".join(lines)


def chart(saved: dict[str, Any], path: Path) -> None:
    """A timeline per variant: when each downloading task instance ran, and on which worker."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")  # no display on CI machines and servers
    import matplotlib.pyplot as plt  # only after use(): pyplot fixes the backend when it loads

    best = best_runs(saved["runs"])
    fig, ax = plt.subplots(figsize=(11, 3.4))
    labels = []
    seen_hosts: set[str] = set()
    for y, (dag_id, label) in enumerate(reversed(list(VARIANTS.items()))):
        run = best[dag_id]
        tis = run["task_instances"]
        height = 0.7 / len(tis)
        for i, ti in enumerate(tis):
            host = ti["hostname"]
            ax.barh(
                y + 0.35 - height * (i + 0.5),
                ti["seconds"],
                left=ti["offset"],
                height=height * 0.9,
                color=HOST_COLORS.get(host, "#7f7f7f"),
                label=host if host not in seen_hosts else None,
            )
            seen_hosts.add(host)
        ax.text(run["fetch_seconds"] * 1.01, y, f"{run['fetch_seconds']:.1f} s", va="center", fontsize=8)
        labels.append(label.replace("`", ""))
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("seconds since the first download started (bars: downloading task instances)")
    machine = saved["machine"]
    title = f"{saved['files']:,} files over SFTP, chunked over Celery workers"
    ax.set_title(f"{title} — {machine['CPU']}, {machine['Date']}", fontsize=8)
    longest = max(run["fetch_seconds"] for run in best.values())
    ax.set_xlim(0, longest * 1.15)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(out: Path) -> str:
    saved = json.loads((out / RESULTS).read_text())
    report = markdown(saved)
    (out / "scaleout.md").write_text(report)
    chart(saved, out / "scaleout.png")
    return report
