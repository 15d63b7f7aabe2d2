"""``python -m benchmarks.itemstab [--quick] [--repeats N] [--out DIR] [--rerender]``: measure, print, save.

Starts an API server (only that: nothing runs tasks) on 127.0.0.1 over a fresh SQLite metadata DB,
puts the ledger of a task of 1,000,000 items with 100,000 failures into it (``--quick``: 100,000
and 10,000), logs in and times the Items tab's requests as the page makes them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks._output import add_out_argument, output_directory
from benchmarks.overhead._env import REPO_ROOT
from benchmarks.overhead._machine import describe

from ._report import chart, markdown

FULL = {"items": 1_000_000, "failures": 100_000, "repeats": 30}
QUICK = {"items": 100_000, "failures": 10_000, "repeats": 10}
WARM_UP = 3

_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    # stderr, so that stdout carries nothing but the report
    print(f"[itemstab {time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def cases(seeded: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(what the page does, path, query) for each request timed."""
    failures = seeded["failures"]
    run = f"{seeded['dag_id']}/{quote(seeded['run_id'], safe='')}"
    ti = f"/iterate/api/ti/{run}/{seeded['task_id']}/-1"
    half = failures // 2
    rare = seeded["failed_labels"][1].rsplit("/", 1)[1]  # one failure's file name
    middle_index = int(rare.split("-")[1].split(".")[0])
    return [
        ("open the tab: summary + first 50 failed items", ti, {"failed_limit": 50}),
        (f"failed items {half:,}-{half + 49:,} (one page)", ti, {"failed_offset": half, "failed_limit": 50}),
        ("50 failed items across two ledger pages", ti, {"failed_offset": half + 25, "failed_limit": 50}),
        ("the last failed items", ti, {"failed_offset": failures - 25, "failed_limit": 50}),
        ("search a label one failure has", ti, {"search": rare, "failed_limit": 50}),
        ("search a label every failure has (first 50)", ti, {"search": "partner-a", "failed_limit": 50}),
        ("search a label no failure has", ti, {"search": "no-such-file", "failed_limit": 50}),
        ("find an item by index (a failed one)", f"{ti}/find", {"index": middle_index}),
        ("find an item by index (a succeeded one)", f"{ti}/find", {"index": 12_345}),
        ("the DAG run's overview", f"/iterate/api/run/{run}", {}),
    ]  # fmt: skip


def measure(client: Any, path: str, params: dict[str, Any], repeats: int) -> dict[str, Any]:
    for _ in range(WARM_UP):
        response = client.get(path, params=params)
        response.raise_for_status()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    ordered = sorted(times)
    return {
        "ms": [t * 1000 for t in times],
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "bytes": len(response.content),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.itemstab", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 items, 10,000 failures, 10 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed requests per case")
    add_out_argument(parser)
    parser.add_argument(
        "--rerender", action="store_true", help="measure nothing: remake the report from itemstab.json"
    )
    args = parser.parse_args(argv)
    args.out = output_directory(args)
    if args.rerender:
        saved = json.loads((args.out / "itemstab.json").read_text())
        (args.out / "itemstab.md").write_text(markdown(saved))
        chart(saved, args.out / "itemstab.png")
        print(markdown(saved))
        return
    sizes = dict(QUICK if args.quick else FULL)
    if args.repeats:
        sizes["repeats"] = args.repeats
    machine = describe()

    import httpx
    from tests.e2e._deployment import AirflowDeployment

    work = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-itemstab-"))
    (work / "dags").mkdir()
    (work / "home").mkdir()
    deployment = AirflowDeployment(work / "home", work / "dags", users={"admin": "admin"})
    results: list[dict[str, Any]] = []
    try:
        _progress(f"metadata DB in {work}")
        deployment._migrate()
        _progress(f"writing the ledger of {sizes['items']:,} items with {sizes['failures']:,} failures")
        seed_out = work / "seeded.json"
        with (work / "seed.log").open("w") as log:
            subprocess.run(
                [sys.executable, "-m", "benchmarks.itemstab._seed", str(sizes["items"]),
                 str(sizes["failures"]), "--json-out", str(seed_out)],
                env={**deployment.env, "PYTHONPATH": str(REPO_ROOT)},
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=True,
            )  # fmt: skip
        seeded = json.loads(seed_out.read_text())
        _progress(f"{seeded['rows']:,} state-store rows, {seeded['stored_chars'] / 1e6:,.1f} MB of JSON")
        deployment._spawn(
            "api-server",
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(deployment.port),
            "--workers",
            "1",
        )
        deployment.wait_for("the api-server", deployment._api_health, 120)
        deployment.api.login()
        client: httpx.Client = deployment.api.http
        for label, path, params in cases(seeded):
            _progress(f"{label}: {sizes['repeats']} requests")
            timed = measure(client, path, params, sizes["repeats"])
            results.append({"case": label, "path": path, "params": params, **timed})
    finally:
        deployment.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - _STARTED
    command = "python -m benchmarks.itemstab" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    saved = {
        "machine": machine,
        "run_info": {"Command": f"`{command.strip()}`", "Runtime": f"{elapsed:.0f} s"},
        "sizes": sizes,
        "seeded": seeded,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "itemstab.json").write_text(json.dumps(saved, indent=1))
    report = markdown(saved)
    (args.out / "itemstab.md").write_text(report)
    chart(saved, args.out / "itemstab.png")
    print(report)
    _progress(f"wrote {args.out / 'itemstab.md'} and {args.out / 'itemstab.png'}")


if __name__ == "__main__":
    main()
