"""adaptive.md and adaptive.png from adaptive.json (``--rerender`` remakes them without measuring)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks._markdown import facts, table

from ._analysis import (
    SETTLE_BAND,
    SETTLE_BAND_MIN,
    case_summary,
    change_summary,
    limit_stats,
    refused_share,
    refused_share_after_warmup,
    shared_summary,
    steady_throughput,
    throughput,
)
from ._config import (
    BIN,
    TARGET_OVERLOAD_SHARE,
    TARGET_SETTLE_SECONDS,
    TARGET_SHARE,
    TARGET_THROUGHPUT,
)

RESULTS = "adaptive.json"


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rate(value: float) -> str:
    return f"{value:,.1f}"


def _fixed(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    return f"{run['concurrency']}: {_rate(steady_throughput(run))}"


def _server(case: dict[str, Any]) -> str:
    kind = "latency grows with load" if case["queueing"] else "refuses only"
    return (
        f"capacity {case['capacity']}, {kind}, {case['latency_at_capacity_ms']:,.0f} ms at capacity, "
        f"RTT {case['rtt_ms']:g} ms"
    )


def _limit(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['median']:g} ({stats['p10']:g}–{stats['p90']:g})"


def markdown(saved: dict[str, Any]) -> str:
    load = saved["load"]
    load_facts = {
        "Load during the run": (
            f"1-min load average {load['load_min']:.1f}–{load['load_max']:.1f} "
            f"(mean {load['load_mean']:.1f}) "
            f"on {load['cores']} cores; CPUs {load['machine_busy']:.0%} busy, this benchmark's processes "
            f"{load['own_share_of_machine']:.0%} of the machine ({load['own_cpu_seconds']:.0f} CPU s)"
        )
    }
    lines = ['# `concurrency="auto"` against a real HTTP server', ""]
    lines += facts({**saved["machine"], **saved["run_info"], **load_facts})
    cases = saved.get("cases", [])
    summaries = [case_summary(case) for case in cases]
    change = change_summary(saved["change"]) if "change" in saved else None
    experiments = saved["shared"]["experiments"] if "shared" in saved else []
    shared = [shared_summary(experiment) for experiment in experiments]
    lines += ["", "## Targets", ""]
    lines += table(
        ["target", "case", "measured", "wanted", "met"],
        _target_rows(cases, summaries, change, experiments, shared),
        "lllll",
    )
    if cases:
        lines += ["", '## `"auto"` against fixed concurrencies, same run', ""]
        lines += [
            "Each row is one server profile. Against it, each fixed concurrency ran for the same time, "
            'then `concurrency="auto", max_concurrency=1024` (nothing else configured) ran longer, '
            "as a task would. Throughput counts successful responses (200) per second. A fixed "
            "concurrency is measured over the second half of its run (it is steady after its first "
            'round trip); `"auto"` over its whole run, ramp-up included (*auto / best*), and over '
            "its second half. A fixed concurrency's 503s are failed items (`max_failures=None`, no "
            "retries): what it served is its best case. *Bound*: *server* if the best fixed "
            "concurrency was at or beyond the capacity, else *client* (the client's share of the CPU "
            "stopped the throughput before the server's capacity). *Slow start* ends when the limit "
            "first comes down.",
            "",
        ]
        header = [
            "server",
            "bound",
            "best fixed: req/s",
            "best fixed with ≤ 1 % 503",
            "fixed 128 (default)",
            "auto req/s: whole / second half",
            "auto / best",
            "auto / best, second half",
            "auto / best with ≤ 1 % 503",
            "auto 503: all / after 2 s / after slow start",
            "auto limit, second half: median (p10–p90)",
        ]
        rows = []
        for case, summary in zip(cases, summaries, strict=True):
            auto = summary["auto"]
            default = summary["default"]
            default_text = "-"
            if default is not None:
                default_text = f"{_rate(steady_throughput(default))} ({_pct(refused_share(default))} 503)"
            rows.append(
                [
                    _server(case["case"]),
                    summary["bound"],
                    _fixed(summary["best"]),
                    _fixed(summary["best_lossless"]),
                    default_text,
                    f"{_rate(throughput(auto))} / {_rate(steady_throughput(auto))}",
                    f"{summary['ratio']:.2f}x",
                    f"{summary['ratio_steady']:.2f}x",
                    "-" if summary["ratio_lossless"] is None else f"{summary['ratio_lossless']:.2f}x",
                    f"{_pct(refused_share(auto))} / {_pct(refused_share_after_warmup(auto))} / "
                    f"{_pct(summary['refused_share_after_slow_start'])}",
                    _limit(summary["limit"]),
                ]
            )
        lines += table(header, rows, "llllrrrrrll")
        lines += ["", "### Every run", ""]
        for case in cases:
            seconds = f"fixed {case['case']['fixed_seconds']:g} s, auto {case['case']['auto_seconds']:g} s"
            lines += [f"**{_server(case['case'])}** ({seconds})", ""]
            lines += table(
                [
                    "concurrency",
                    "req/s",
                    "second half",
                    "503",
                    "503 after 2 s",
                    "latency p50 / p95 ms",
                    "failed items",
                    "client CPU ms/response",
                    "refused, then served: items, p50 / max s",
                ],
                [_run_row(run) for run in case["runs"]],
                "lrrrrrrrr",
            )
            lines.append("")
    if change is not None:
        lines += _change_section(saved["change"], change)
    if shared:
        lines += _shared_section(saved["shared"], shared)
    lines += ["## Notes", ""]
    lines += [f"- {note}" for note in _notes(saved)]
    return "\n".join(lines) + "\n"


def _run_row(run: dict[str, Any]) -> list[str]:
    total = run["ok"] + run["refused"] + run["no_response"]
    latency = (
        "-"
        if run["latency_p50_ms"] is None
        else f"{run['latency_p50_ms']:,.0f} / {run['latency_p95_ms']:,.0f}"
    )
    put_back = "-"
    if run["put_back_items"]:
        put_back = f"{run['put_back_items']}, {run['put_back_p50_s']:g} / {run['put_back_max_s']:g}"
    return [
        str(run["concurrency"]),
        _rate(throughput(run)),
        _rate(steady_throughput(run)),
        f"{run['refused']:,} ({_pct(refused_share(run))})",
        _pct(refused_share_after_warmup(run)),
        latency,
        f"{run['failed_items']:,}",
        f"{run['client_cpu'] / total * 1000:.2f}" if total else "-",
        put_back,
    ]


def _target_rows(
    cases: list[dict[str, Any]],
    summaries: list[dict[str, Any]],
    change: dict[str, Any] | None,
    shared_experiments: list[dict[str, Any]],
    shared: list[dict[str, Any]],
) -> list[list[str]]:
    rows = []
    for case, summary in zip(cases, summaries, strict=True):
        rows.append(
            [
                "throughput vs the best fixed concurrency",
                case["key"],
                f"{summary['ratio']:.2f}x (second half {summary['ratio_steady']:.2f}x)",
                f"≥ {TARGET_THROUGHPUT}x",
                _met(summary["ratio"] >= TARGET_THROUGHPUT),
            ]
        )
    for case, summary in zip(cases, summaries, strict=True):
        share = summary["refused_share_after_slow_start"]
        after_2s = refused_share_after_warmup(summary["auto"])
        ended = summary["slow_start_end"]
        rows.append(
            [
                "503s after slow start (after the first 2 s)",
                case["key"],
                f"{_pct(share)} ({summary['refused_after_slow_start']:,}, from {ended or 0:.1f} s) "
                f"({_pct(after_2s)})",
                f"≤ {TARGET_OVERLOAD_SHARE:.0%}",
                _met(share is None or share <= TARGET_OVERLOAD_SHARE),
            ]
        )
    if change is not None:
        for phase in change["phases"][1:]:
            settled = phase["settled_after"]
            rows.append(
                [
                    "limit settled after the capacity changed",
                    f"to {phase['capacity']} at {phase['start']:.0f} s",
                    ("not settled" if settled is None else f"{settled:.1f} s")
                    + f" (held {phase['level']:.0f})",
                    f"≤ {TARGET_SETTLE_SECONDS:g} s",
                    _met(settled is not None and settled <= TARGET_SETTLE_SECONDS),
                ]
            )
    for experiment, summary in zip(shared_experiments, shared, strict=True):
        low, high = TARGET_SHARE
        for index, share in enumerate(summary["shares"]):
            rows.append(
                [
                    "share of a shared server, steady state",
                    f"{'first' if index == 0 else 'second'} chunk (second started "
                    f"{experiment['stagger']:g} s later)",
                    _pct(share),
                    f"{low:.0%}–{high:.0%}",
                    _met(low <= share <= high),
                ]
            )
    return rows


def _change_section(result: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    case = result["case"]
    run = result["run"]
    lines = [
        "## The server's capacity halved and restored",
        "",
        f'One `"auto"` run of {result["seconds"]:g} s against {_server(case)}; at the times below '
        "the server was reconfigured (`server.configure(capacity=..., latency_per_request_ms=...)` "
        "from a timer thread: half the workers, so its latency also grows twice as fast with load). "
        "*Settled after*: from then on the sampled limit stayed within ±25% (at least ±2) of the "
        "new capacity (the limit counts requests in flight at the client, a little more than the "
        "server holds with a round trip between them; one probing for the capacity moves below it "
        "and back). *Held*: the median of the phase's last 40%. "
        f"Overall: {_rate(throughput(run))} req/s, {_pct(refused_share(run))} 503.",
        "",
    ]
    rows = []
    for index, phase in enumerate(summary["phases"]):
        settled = phase["settled_after"]
        rows.append(
            [
                f"{phase['start']:.1f}–{phase['stop']:.1f} s",
                str(phase["capacity"]),
                "-" if phase["level"] is None else f"{phase['level']:.0f}",
                "-" if index == 0 else ("not settled" if settled is None else f"{settled:.1f} s"),
                f"{phase['refused']:,}",
                f"{phase['refused_first_5s']:,}",
                _pct(phase["refused_share_after_5s"]),
                _rate(phase["throughput"]),
                _rate(phase["throughput_after_5s"]),
            ]
        )
    lines += table(
        [
            "phase",
            "capacity",
            "held",
            "settled after",
            "503",
            "503 in its first 5 s",
            "503 share after 5 s",
            "req/s",
            "req/s after 5 s",
        ],
        rows,
        "lrrrrrrrr",
    )
    return [*lines, ""]


def _shared_section(result: dict[str, Any], summaries: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Two chunks sharing one server",
        "",
        'Two processes, each one `ItemRunner` with `concurrency="auto"` (as two chunk task instances '
        f"of one task), against {_server(result['case'])}: started together, then with the second "
        "starting later (another task joining); both end together. *Steady*: the second half of the "
        "time they shared the server. *First's share by 5 s*: the first's share of what the server "
        "served them, window by window from when both ran.",
        "",
    ]
    rows = []
    for experiment, summary in zip(result["experiments"], summaries, strict=True):
        origin = experiment["runs"][0]["started_at"]
        start, stop = summary["window"]
        windows = ", ".join(f"{share:.0%}" for _, share in summary["first_share_by_window"])
        for index, run in enumerate(experiment["runs"]):
            rows.append(
                [
                    f"{'first' if index == 0 else 'second'}, {run['seconds']:g} s from "
                    f"{max(0.0, run['started_at'] - origin):.1f} s",
                    f"{start:.1f}–{stop:.1f} s",
                    _rate(summary["throughputs"][index]),
                    _pct(summary["shares"][index]),
                    _limit(summary["limits"][index]),
                    f"{summary['refused'][index]:,}",
                    f"{run['refused']:,} ({_pct(refused_share(run))})",
                    windows if index == 0 else "",
                ]
            )
    lines += table(
        [
            "chunk",
            "steady window",
            "req/s, steady",
            "share, steady",
            "limit, steady: median (p10–p90)",
            "503 steady",
            "503 whole run",
            "first's share by 5 s",
        ],
        rows,
        "llrrlrrl",
    )
    return [*lines, ""]


def _notes(saved: dict[str, Any]) -> list[str]:
    return [
        "Every number comes from real runs: `ItemRunner` (the engine behind `.iterate()`) with async "
        "items, each a `GET /records/<id>` through one shared `httpx.AsyncClient` per run and "
        "`response.raise_for_status()`, against `devtools.http_server` (uvicorn in its own process) "
        "reconfigured for each profile; the 20 ms round trip is `devtools.delay_proxy` in its own "
        "process. Runs follow each other; the server has drained (nothing in flight) before each.",
        "Fairness: a fixed concurrency's 503s count as failed items, not retried. Retrying them "
        "(`item_retries` with its backoff) would add waits that depend on the retry settings and "
        "lower the fixed runs' throughput; counting only what they served gives the fixed runs "
        'their best case, so `auto / best` is the conservative ratio. `"auto"` puts a refused '
        "item back (no `item_retries` spent) and its items all complete (*failed items* 0).",
        "The server's latency model: with *latency grows with load*, a request arriving with n "
        "others in flight takes `service + service/capacity x n` (the latency doubles at capacity, "
        "as on a server whose workers share its CPU) and is refused (503, no Retry-After) beyond "
        "`capacity`; *refuses only* answers in the loaded time at any load and refuses beyond "
        "`capacity`. Service times grow with the capacity (50 ms for 8, 400 ms for 64, 1 s for "
        "512) so that capacities 8 and 64 serve at most ~80 requests/s, which one client process "
        "drives on a busy 2-core machine. At capacity 512 that would need answers of several "
        "seconds; the client's CPU is the bound there unless the machine is idle.",
        "The client spreads its connections over httpcore pools of 4: httpcore 1.0.9's pool walks "
        "all its connections for each idle one whenever a request enters or leaves it "
        "(encode/httpcore#1035). Measured on this machine before the run, 400 ms answers, 64 and "
        "256 requests in flight: one pool cost 9–11 ms of client CPU per request (31–36 req/s), "
        "pools of 4 cost 1.4–1.5 ms (115–144 req/s); with one pool the client, not the server, "
        "would be the bound of every case.",
        "The limit is `RunStatistics.limit`, sampled every 50 ms (its changes and their reasons, "
        "from the limit's own history, are in adaptive.json). *Refused, then served*: items of an "
        '`"auto"` run that met a 503 at '
        "least once, and the time from their first attempt to their answer. An item put back "
        "waits about a round trip (the time the limit needs to have come down), then takes the "
        "next free permit ahead of items not yet started.",
        "The machine is shared: other work ran during the measurement (the load figures above). "
        "Runs of a profile follow each other within a minute, so they met similar load, but not "
        "the same: ratios of a few percent either way are within the noise.",
    ]


# -- the chart ----------------------------------------------------------------------------------


def chart(saved: dict[str, Any], path: Path, title: str) -> None:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(14, 14))
    grid = fig.add_gridspec(3, 2)
    _sweep_panel(fig.add_subplot(grid[0, 0]), saved.get("cases", []))
    _limits_panel(fig.add_subplot(grid[0, 1]), saved.get("cases", []))
    if "change" in saved:
        _change_panel(fig.add_subplot(grid[1, :]), saved["change"])
    if "shared" in saved:
        for column, experiment in enumerate(saved["shared"]["experiments"][:2]):
            _shared_panel(fig.add_subplot(grid[2, column]), saved["shared"]["case"], experiment)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _sweep_panel(ax: Any, cases: list[dict[str, Any]]) -> None:
    for index, case in enumerate(cases):
        color = f"C{index}"
        fixed = [r for r in case["runs"] if r["concurrency"] != "auto"]
        auto = next(r for r in case["runs"] if r["concurrency"] == "auto")
        best = max(steady_throughput(r) for r in fixed)
        xs = [r["concurrency"] for r in fixed]
        ys = [steady_throughput(r) / best for r in fixed]
        ax.plot(xs, ys, "o-", color=color, label=case["key"], lw=1.2, ms=4)
        stats = limit_stats(auto, auto["seconds"] / 2, auto["seconds"])
        if stats is not None:
            ax.plot(
                [stats["median"]], [throughput(auto) / best], "*", color=color, ms=13, mec="black", mew=0.6
            )
    ax.axhline(TARGET_THROUGHPUT, color="grey", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(
        "fixed concurrency (lines, second half of each run); ★ auto (whole run), at its median limit"
    )
    ax.set_ylabel("throughput / best fixed of the profile")
    ax.set_title("Throughput: fixed sweep and auto (★), same run", fontsize=10)
    ax.legend(fontsize=7, loc="lower center", ncol=2)
    ax.set_ylim(bottom=0)


def _limits_panel(ax: Any, cases: list[dict[str, Any]]) -> None:
    for index, case in enumerate(cases):
        auto = next(r for r in case["runs"] if r["concurrency"] == "auto")
        capacity = case["case"]["capacity"]
        ts = [s[0] for s in auto["samples"]]
        ax.plot(ts, [s[1] / capacity for s in auto["samples"]], color=f"C{index}", lw=1, label=case["key"])
    ax.axhline(1.0, color="black", ls="--", lw=0.8)
    ax.set_xlim(left=0)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("auto's limit / the server's capacity")
    ax.set_title("The limit of each auto run (1 = the server's capacity)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)


def _change_panel(ax: Any, result: dict[str, Any]) -> None:
    run = result["run"]
    seconds = result["seconds"]
    ts = [s[0] for s in run["samples"]]
    ax.plot(ts, [s[1] for s in run["samples"]], color="C0", lw=1.2, label="auto's limit")
    changes = result["changes"] or result["planned"]
    steps_t = [0.0] + [at for at, _ in changes] + [seconds]
    steps_c = [result["case"]["capacity"]] + [capacity for _, capacity in changes]
    ax.step(
        steps_t, [*steps_c, steps_c[-1]], where="post", color="black", ls="--", lw=1, label="server capacity"
    )
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests in flight allowed")
    ax.set_ylim(bottom=0)
    twin = ax.twinx()
    centers = [(i + 0.5) * BIN for i in range(len(run["bins"]))]
    twin.bar(centers, [b[1] / BIN for b in run["bins"]], width=BIN, color="C3", alpha=0.5, label="503/s")
    per_second = _per_second(run)
    twin.plot([t for t, _ in per_second], [v for _, v in per_second], color="C2", lw=0.8, label="200/s (1 s)")
    ax.set_xlim(0, seconds)
    twin.set_ylabel("responses per second")
    twin.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], fontsize=7, loc="upper left")
    summary = change_summary(result)
    for phase in summary["phases"][1:]:
        settled = phase["settled_after"]
        if settled is not None:
            ax.axvline(phase["start"] + settled, color="C0", ls=":", lw=0.8)
        band = max(SETTLE_BAND * phase["capacity"], SETTLE_BAND_MIN)
        ax.fill_between(
            [phase["start"], phase["stop"]],
            phase["capacity"] - band,
            phase["capacity"] + band,
            color="C0",
            alpha=0.08,
        )
    ax.set_title(f"Capacity halved and restored ({_server(result['case'])})", fontsize=10)


def _shared_panel(ax: Any, case: dict[str, Any], experiment: dict[str, Any]) -> None:
    first_start = experiment["runs"][0]["started_at"]
    twin = ax.twinx()
    for index, run in enumerate(experiment["runs"]):
        offset = run["started_at"] - first_start
        name = "first" if index == 0 else "second"
        color = f"C{index}"
        ts = [s[0] + offset for s in run["samples"]]
        ax.plot(ts, [s[1] for s in run["samples"]], color=color, lw=1.2, label=f"{name}: limit")
        per_second = _per_second(run)
        ts = [t + offset for t, _ in per_second]
        twin.plot(ts, [v for _, v in per_second], color=color, lw=0.8, ls=":", label=f"{name}: 200/s")
    ax.axhline(case["capacity"], color="black", ls="--", lw=0.8, label="server capacity")
    summary = shared_summary(experiment)
    ax.axvspan(*summary["window"], color="grey", alpha=0.12, label="steady state")
    ax.set_xlim(0, experiment["seconds"])
    ax.set_xlabel("seconds since the first started")
    ax.set_ylabel("requests in flight allowed")
    ax.set_ylim(bottom=0)
    twin.set_ylabel("responses per second (1 s)")
    twin.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], fontsize=7, loc="upper left")
    shares = ", ".join(f"{s:.0%}" for s in summary["shares"])
    stagger = f"second {experiment['stagger']:g} s later" if experiment["stagger"] else "started together"
    ax.set_title(f"Two auto chunks on one server, {stagger}: steady shares {shares}", fontsize=10)


def _per_second(run: dict[str, Any]) -> list[tuple[float, float]]:
    per = max(1, round(1.0 / BIN))
    bins = run["bins"]
    return [
        ((i + per / 2) * BIN, sum(b[0] for b in bins[i : i + per]) / (per * BIN))
        for i in range(0, len(bins) - per + 1, per)
    ]


def render(out: Path) -> str:
    saved = json.loads((out / RESULTS).read_text())
    report = markdown(saved)
    (out / "adaptive.md").write_text(report)
    machine = saved["machine"]
    chart(
        saved,
        out / "adaptive.png",
        f'concurrency="auto" against a real HTTP server — {machine["CPU"]}, {machine["Date"]}',
    )
    return report
