"""itemstab.md and itemstab.png from the measurements."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks._markdown import facts, table

#: what the Items tab aims at, per request, for a task of 1,000,000 items
TARGET_MS = 200.0


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def markdown(saved: dict[str, Any]) -> str:
    seeded, results = saved["seeded"], saved["results"]
    opening = results[0]
    paging = [r for r in results if "failed items" in r["case"] and "search" not in r["case"]]
    worst_page = max(r["p95_ms"] for r in paging)
    lines = [
        "# The Items tab's JSON endpoints on a task of "
        f"{seeded['items']:,} items with {seeded['failures']:,} failures",
        "",
        *facts(
            {
                **saved["machine"],
                **saved["run_info"],
                "Ledger": f"one document ({seeded['document_chars']:,} characters) and "
                f"{seeded['rows'] - 1:,} pages of failed items in the task state store, "
                f"{seeded['stored_chars'] / 1e6:,.1f} MB of JSON in all (SQLite)",
                "Server": "`airflow api-server` on 127.0.0.1, one worker, the plugin mounted as in any "
                "deployment; requests over HTTP with a JWT, one keep-alive connection",
            }
        ),
        "",
        f"**Opening the tab answers in {_ms(opening['p50_ms'])} ms** (median; 95th percentile "
        f"{_ms(opening['p95_ms'])} ms), and any page of the failed items within {_ms(worst_page)} ms "
        f"at the 95th percentile (target: {TARGET_MS:.0f} ms).",
        "",
    ]
    rows = [
        [
            r["case"],
            _ms(r["p50_ms"]),
            _ms(r["p95_ms"]),
            _ms(r["max_ms"]),
            f"{r['bytes'] / 1024:,.1f}",
        ]
        for r in results
    ]
    lines += table(["request", "median ms", "p95 ms", "max ms", "answer KiB"], rows, "lrrrr")
    lines += [
        "",
        f"Each request ran {len(results[0]['ms'])} times after {3} untimed ones. The ledger is what "
        "airflow_iterate's own `Ledger` writes for such a run (every 10th item failed, labels of 60 "
        "characters, messages of 70); nothing is per item: a page of failures reads one or two rows. "
        "A search asks the database which pages hold the term in their JSON text (case ignored), then "
        "decodes those pages only until the page of matches is full: a term every failure has stops "
        "after the first pages, a rare one decodes a page or two, and a term no failure has is "
        "answered by the database alone. Finding an item by index works the same way (the database "
        "looks for its index in the pages). Everything else on this machine shares its 2 cores: the "
        "load average above says how busy it was.",
    ]
    return "\n".join(lines) + "\n"


def chart(saved: dict[str, Any], path: Path) -> None:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")  # no display on CI machines and servers
    import matplotlib.pyplot as plt  # only after use(): pyplot fixes the backend when it loads

    results = list(reversed(saved["results"]))  # barh draws bottom-up
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(results) + 1.8))
    labels = [r["case"] for r in results]
    ax.barh(labels, [r["p95_ms"] for r in results], color="#9ecae1", label="95th percentile")
    ax.barh(labels, [r["p50_ms"] for r in results], color="#1f77b4", label="median")
    ax.axvline(TARGET_MS, color="#d62728", linestyle="--", linewidth=1, label=f"{TARGET_MS:.0f} ms")
    for index, r in enumerate(results):
        ax.text(r["p95_ms"] + 2, index, f"{_ms(r['p50_ms'])} / {_ms(r['p95_ms'])}", va="center", fontsize=8)
    ax.set_xlim(0, max(TARGET_MS * 1.15, max(r["p95_ms"] for r in results) * 1.25))
    ax.set_xlabel("ms per request (median / p95), over HTTP to a real API server")
    seeded = saved["seeded"]
    ax.set_title(
        f"Items tab JSON endpoints, {seeded['items']:,} items, {seeded['failures']:,} failures — "
        f"{saved['machine']['CPU']}, {saved['machine']['Date']}",
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
