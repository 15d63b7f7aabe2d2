"""The markdown report and the bar chart."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

from benchmarks._markdown import facts, table
from benchmarks._measured import DISTURBED_MIN_SECONDS, DISTURBED_SHARE, Target, by_key

from ._config import PROPOSAL_FILES
from ._results import Measurement, best_provider, targets

#: the proposal's table: approach, time for 17,000 files, where it was measured, our row keys
PROPOSAL = (
    ("mapped `SFTPOperator`", "3h25m", "production", ("expand",)),
    ("`PythonOperator` + `SFTPHook`", "1h21m", "laptop", ("hook_sync",)),
    ("async task + `SFTPHookAsync`, no pool", "8m29s", "laptop", ("hook_async",)),
    ("async task + connection pool", "3m32s", "production", ("provider_default", "provider_best")),
)
LINK_TITLES = {"proxy": "{rtt:g} ms RTT (through the delay proxy)", "direct": "~0 ms RTT (direct, no proxy)"}


def duration(seconds: float) -> str:
    """Like the proposal writes it: 3h25m, 8m29s, 42.1s."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    # Two significant digits keep the tiny ratios (row 1 against the others) readable.
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def resultstable(rows: list[Measurement], link: str) -> list[str]:
    found = by_key(rows, link)
    expand, raw = found.get("expand"), found["raw"]
    lines = []
    for row in [r for r in rows if r.link == link]:
        label = row.label + (" †" if row.disturbed else "")
        when = duration(row.proposal_seconds) + (" (extrapolated)" if row.extrapolated else "")
        lines.append(
            [
                row.number,
                label,
                f"{row.files:,}",
                f"{row.bytes / 1e6:,.1f}",
                f"{row.wall:,.1f}",
                f"{row.files_per_second:,.1f}",
                when,
                f"{row.cpu:,.1f}",
                f"{row.cpu_ms_per_file:,.2f}",
                f"{row.peak_rss / 2**20:,.0f}",
                f"{row.sshd_cpu:,.1f}",
                _ratio(row.files_per_second / expand.files_per_second) if expand else "-",
                _ratio(row.files_per_second / raw.files_per_second),
            ]
        )
    header = [
        "#",
        "approach",
        "files",
        "MB",
        "wall s",
        "files/s",
        f"{PROPOSAL_FILES:,} files",
        "client CPU s",
        "CPU ms/file",
        "peak RSS MiB",
        "sshd CPU s",
        "vs (1)",
        "vs (6)",
    ]
    return table(header, lines, "llrrrrlrrrrrr")


def targetstable(rows: list[Measurement], link: str) -> list[str]:
    found = by_key(rows, link)
    lines = []
    names = (("iterate_default", "(5) defaults"),)
    for key, name in names:
        if key not in found:
            continue
        target: Target
        for target in targets(found, key):
            met = "yes" if target.met else "**no**"
            # Two decimals below 100x, so that a value just under its target never reads as equal to it.
            value = f"{target.value:,.0f}x" if target.value >= 100 else f"{target.value:.2f}x"
            lines.append([name, target.label, value, f"≥ {target.wanted:g}x", met])
    return table(["row", "target", "measured", "wanted", "met"], lines, "llrll")


def proposaltable(rows: list[Measurement], links: list[str]) -> list[str]:
    per_link = {link: by_key(rows, link) for link in links}
    lines = []
    for label, time, where, keys in PROPOSAL:
        cells = [label, f"{time} ({where})"]
        for link in links:
            found = per_link[link]
            parts = []
            for key in keys:
                row = best_provider(found) if key == "provider_best" else found.get(key)
                if row is None:
                    continue
                note = " extrapolated" if row.extrapolated else ""
                if key.startswith("provider"):
                    note = f" (size {row.details['pool_size']}{',' + note if note else ''})"
                elif note:
                    note = f" ({note.strip()})"
                parts.append(duration(row.proposal_seconds) + note)
            cells.append(", ".join(parts) or "-")
        lines.append(cells)
    ours = ["`.iterate()` + `SFTPPool` (this package)", "-"]
    for link in links:
        found = per_link[link]
        variants = (
            ("iterate_default", "defaults"),
            ("iterate_c32", "`concurrency=32`"),
        )
        ours.append(
            ", ".join(
                f"{duration(found[key].proposal_seconds)} ({name}"
                + (", extrapolated)" if found[key].extrapolated else ")")
                for key, name in variants
                if key in found
            )
        )
    lines.append(ours)
    header = ["approach", "proposal, 17,000 files", *(f"this run, {_link_name(link)}" for link in links)]
    return table(header, lines, "ll" + "l" * len(links))


def _link_name(link: str) -> str:
    return "~0 ms" if link == "direct" else "with delay"


_CHART_LABELS = {
    "expand": "mapped SFTPOperator, scheduler",
    "hook_sync": "SFTPHook loop",
    "hook_async": "SFTPHookAsync per file, 16 at once",
    "iterate_default": ".iterate() + SFTPPool, defaults",
    "iterate_c32": ".iterate(), concurrency=32",
    "raw": "raw asyncssh, hand-tuned",
}


def _chart_label(row: Measurement) -> str:
    if row.key.startswith("provider_"):
        size = row.details["pool_size"]
        name = (
            f"provider pool, default size {size}"
            if row.key == "provider_default"
            else f"provider pool, {size}"
        )
    else:
        name = _CHART_LABELS.get(row.key, row.key)
    return f"({row.number}) {name}"


def markdown(
    *,
    machine: dict[str, str],
    run_info: dict[str, str],
    rows: list[Measurement],
    links: list[tuple[str, float]],
    notes: list[str],
) -> str:
    lines = ["# SFTP: the proposal's benchmark, reproduced", ""]
    lines += facts({**machine, **run_info})
    names = [name for name, _ in links]
    lines += ["", "## The proposal's table next to this run", ""]
    lines += proposaltable(rows, names)
    for name, rtt in links:
        title = LINK_TITLES[name].format(rtt=rtt)
        lines += ["", f"## {title}", ""]
        lines += resultstable(rows, name)
        lines += ["", f"Targets for (5), {title}:", ""]
        lines += targetstable(rows, name)
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in notes]
    lines += [
        f"- † marks a row during which other processes on the machine used more than "
        f"{DISTURBED_SHARE:.0%} of a core (and {DISTURBED_MIN_SECONDS:g} CPU s); it was measured again "
        "when short, and the least disturbed attempt is shown. `other_cpu` in sftp.json has the numbers."
    ]
    return "\n".join(lines) + "\n"


def chart(rows: list[Measurement], links: list[tuple[str, float]], path: Path, title: str) -> None:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")  # no display on CI machines and servers
    import matplotlib.pyplot as plt  # only after use(): pyplot fixes the backend when it loads

    keys = list(dict.fromkeys(row.key for row in rows))
    labels = {row.key: _chart_label(row) for row in rows}
    colors = ("#d62728", "#1f77b4")
    height = 0.8 / len(links)
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(keys) * len(links) + 1.6))
    for offset, ((name, rtt), color) in enumerate(zip(links, colors, strict=False)):
        found = by_key(rows, name)
        ys = [
            len(keys) - 1 - i + (len(links) - 1 - offset) * height - 0.4 + height / 2
            for i in range(len(keys))
        ]
        present = [(y, found[key]) for y, key in zip(ys, keys, strict=True) if key in found]
        bars = ax.barh(
            [y for y, _ in present],
            [row.proposal_seconds for _, row in present],
            height=height,
            color=color,
            label=LINK_TITLES[name].format(rtt=rtt),
            hatch=None,
        )
        for bar, (_, row) in zip(bars, present, strict=True):
            if row.extrapolated:
                bar.set_hatch("//")
            ax.text(
                bar.get_width() * 1.08,
                bar.get_y() + bar.get_height() / 2,
                duration(row.proposal_seconds) + (" (extrapolated)" if row.extrapolated else ""),
                va="center",
                fontsize=7,
            )
    ax.set_yticks(range(len(keys)), [labels[key] for key in reversed(keys)], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"time for {PROPOSAL_FILES:,} files (log scale; hatched: extrapolated from a subset)")
    ax.set_title(title, fontsize=10)
    longest = max(row.proposal_seconds for row in rows)
    shortest = min(row.proposal_seconds for row in rows)
    ax.set_xlim(left=shortest / 2, right=longest * 8)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
