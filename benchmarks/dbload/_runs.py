"""Subprocess entry point: one ``dag.test()`` run per case, counting what each writes to the DB.

Runs in its own interpreter (Airflow's logging goes to the caller's log file). The "ledger off"
cases patch this process only: the operator's ``open_ledger`` returns a ledger that builds its
documents as usual but whose store drops them, since the package has no option to switch it off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pendulum
from airflow import settings
from airflow.models.taskinstance import TaskInstance
from airflow.sdk import DAG, task
from airflow.utils.session import create_session

import airflow_iterate  # importing the package gives @task functions .iterate()
from airflow_iterate import IterateOperator
from airflow_iterate._airflow import _operator
from airflow_iterate._core import Ledger, RunOptions
from benchmarks.overhead._dagrun import register

from ._config import SLOW_CHECKPOINT_INTERVAL, SLOW_PROGRESS_INTERVAL
from ._counting import WriteCounter, row_counts


@task
async def noop(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class Case:
    key: str
    dag_id: str
    label: str
    items: int
    ledger: bool
    checkpoint: bool
    progress_interval: float | None = None


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)


def build(args: argparse.Namespace) -> tuple[list[Case], dict[str, DAG]]:
    n, slow_n = args.items, args.slow_items
    sleep = args.slow_sleep

    @task
    async def wait(x: Any) -> Any:
        await asyncio.sleep(sleep)
        return x

    cases = [
        Case("ledger", "dbload_iterate", ".iterate(), defaults (ledger + checkpoint)", n, True, True),
        Case("no_ledger", "dbload_iterate_no_ledger", ".iterate(), ledger off", n, False, True),
        Case("floor", "dbload_iterate_floor", ".iterate(), ledger off, checkpoint=False", n, False, False),
        Case(
            "slow",
            "dbload_iterate_slow",
            f".iterate(), items await {sleep * 1e3:g} ms, {args.slow_concurrency} at a time, "
            f"progress_interval={SLOW_PROGRESS_INTERVAL:g}, checkpoint_interval={SLOW_CHECKPOINT_INTERVAL:g}",
            slow_n,
            True,
            True,
            SLOW_PROGRESS_INTERVAL,
        ),
        Case("expand", "dbload_expand", ".expand()", args.expand_items, False, False),
    ]
    dags: dict[str, DAG] = {}
    with _dag("dbload_warmup") as dags["warmup"]:
        noop.override(task_id="warmup")(0)
        noop.override(task_id="warmup_iterate").iterate(x=list(range(1_000)))
    with _dag("dbload_iterate") as dags["ledger"]:
        noop.override(task_id="iterate").iterate(x=list(range(n)))
    with _dag("dbload_iterate_no_ledger") as dags["no_ledger"]:
        noop.override(task_id="iterate").iterate(x=list(range(n)))
    with _dag("dbload_iterate_floor") as dags["floor"]:
        noop.override(task_id="iterate").iterate(x=list(range(n)), checkpoint=False)
    with _dag("dbload_iterate_slow") as dags["slow"]:
        wait.override(task_id="iterate").iterate(
            x=list(range(slow_n)),
            concurrency=args.slow_concurrency,
            progress_interval=SLOW_PROGRESS_INTERVAL,
            checkpoint_interval=SLOW_CHECKPOINT_INTERVAL,
        )
    with _dag("dbload_expand") as dags["expand"]:
        noop.override(task_id="expand").expand(x=list(range(args.expand_items)))
    return cases, dags


class _DropWrites:
    def put(self, name: str, value: Any) -> None:
        pass


@dataclass
class _Opened:
    """The ledgers and checkpoints the operator opened during one run, to read their own counts."""

    ledgers: list[Ledger]
    checkpoints: list[Any]


@contextlib.contextmanager
def _watch_operator(*, ledger_on: bool) -> Iterator[_Opened]:
    """Record what the operator opens; with ``ledger_on=False`` its ledger writes go nowhere."""
    opened = _Opened([], [])
    # the names the operator module imported, which is where execute() looks them up
    real_ledger: Callable[..., Ledger] = getattr(_operator, "open_ledger")  # noqa: B009
    real_checkpoint: Callable[..., Any] = getattr(_operator, "open_checkpoint")  # noqa: B009

    def open_ledger(context: Any, **about: Any) -> Ledger:
        ledger = real_ledger(context, **about) if ledger_on else Ledger(_DropWrites(), about=about)
        opened.ledgers.append(ledger)
        return ledger

    def open_checkpoint(*args: Any, **kwargs: Any) -> Any:
        checkpoint, where = real_checkpoint(*args, **kwargs)
        opened.checkpoints.append(checkpoint)
        return checkpoint, where

    with (
        mock.patch.object(_operator, "open_ledger", open_ledger),
        mock.patch.object(_operator, "open_checkpoint", open_checkpoint),
    ):
        yield opened


_execute_seconds: list[float] = []
_execute_started: list[float] = []  # time.monotonic()


def _time_execute() -> None:
    original = IterateOperator.execute

    @functools.wraps(original)
    def timed(self: IterateOperator, context: Any) -> Any:
        _execute_started.append(time.monotonic())
        start = time.perf_counter()
        try:
            return original(self, context)
        finally:
            _execute_seconds.append(time.perf_counter() - start)

    IterateOperator.execute = timed  # type: ignore[method-assign]


def run_case(case: Case, dag: DAG, counter: WriteCounter) -> dict[str, Any]:
    engine = settings.engine
    before = row_counts(engine)
    _execute_seconds.clear()
    _execute_started.clear()
    with _watch_operator(ledger_on=case.ledger) as opened:
        counter.reset()
        start = time.perf_counter()
        dag_run = dag.test()
        wall = time.perf_counter() - start
        writes = counter.snapshot()
        events = counter.events()
    after = row_counts(engine)
    if dag_run.state != "success":
        raise RuntimeError(f"dag.test() of {dag.dag_id} ended in state {dag_run.state}")
    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id).all()
        durations = [float(ti.duration or 0.0) for ti in tis]
    return {
        **case.__dict__,
        "wall": wall,
        "execute_seconds": list(_execute_seconds),
        "execute_started": [t - counter.started for t in _execute_started],
        "ti_durations": durations,
        "rows_added": {
            name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)
        },
        "writes": writes,
        "events": events,
        "own_counts": {
            "ledger_writes": sum(ledger.writes for ledger in opened.ledgers),
            "checkpoint_writes": sum(c.writes for c in opened.checkpoints),
            "checkpoint_flushes": sum(c.flushes for c in opened.checkpoints),
        },
    }


#: cases run ``--repeats`` times, in turns; the others (seconds to minutes each) run once
REPEATED = ("ledger", "no_ledger", "floor")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--slow-items", type=int, required=True)
    parser.add_argument("--slow-sleep", type=float, required=True)
    parser.add_argument("--slow-concurrency", type=int, required=True)
    parser.add_argument("--expand-items", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--dags-folder", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()

    cases, dags = build(args)
    register(dags, args.dags_folder)
    _time_execute()
    counter = WriteCounter()
    counter.install()
    # The first task instances of a process start the in-process execution API and import what a
    # run needs; that one-off cost belongs to no case.
    dags["warmup"].test()
    by_key = {case.key: case for case in cases}
    order = [key for _ in range(args.repeats) for key in REPEATED]
    order += [case.key for case in cases if case.key not in REPEATED]
    runs = []
    for key in order:
        case = by_key[key]
        print(f"[dbload] case {case.key}: {case.label}", flush=True)
        runs.append(run_case(case, dags[case.key], counter))
    args.json_out.write_text(
        json.dumps(
            {
                "cases": [case.__dict__ for case in cases],
                "runs": runs,
                "airflow_iterate": str(Path(airflow_iterate.__file__).parent),
                "defaults": {
                    "progress_interval": RunOptions().progress_interval,
                    "checkpoint_interval": RunOptions().checkpoint_interval,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
