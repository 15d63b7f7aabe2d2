"""`python -m examples.demo_expand`: .iterate() over 10,000 items next to .expand() over 200.

Everything lives under .demo/ (its own AIRFLOW_HOME with a SQLite metadata DB).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".demo" / "expand" / "airflow-home"
DAG_ID = "iterate_demo"


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "examples" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def _airflow(*args: str, log: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    with log.open("w") as out:
        proc = subprocess.run([str(airflow), *args], env=_environment(), stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        sys.exit(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}); log {log}:\n{tail}")


def main() -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    logs = HOME.parent
    print(f"AIRFLOW_HOME={HOME}")
    print("Preparing the metadata DB and serializing the DAG ...")
    _airflow("db", "migrate", log=logs / "db-migrate.log")
    _airflow("dags", "reserialize", log=logs / "reserialize.log")
    print(f"Running `airflow dags test {DAG_ID}` (log: {logs / 'dags-test.log'}) ...")
    started = time.monotonic()
    _airflow("dags", "test", DAG_ID, log=logs / "dags-test.log")
    print(f"DAG run finished in {time.monotonic() - started:.1f}s\n")
    _report()


def _report() -> None:
    os.environ.update(_environment())
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAG_ID).order_by(DagRun.id.desc()).first()
        assert run is not None, "the demo DAG run is missing"
        tis = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run.run_id).all()
        rows = []
        for task_id in ("fetch_iterated", "fetch_mapped"):
            mine = [ti for ti in tis if ti.task_id == task_id]
            wall = max(ti.end_date for ti in mine) - min(ti.start_date for ti in mine)
            check = next(ti for ti in tis if ti.task_id == task_id.replace("fetch", "check"))
            items = check.xcom_pull(task_ids=check.task_id, session=session)["items"]
            rows.append((task_id, len(mine), items, wall.total_seconds(), check.state))
        state = run.state

    if state != "success" or any(r[4] != "success" for r in rows):
        sys.exit(f"DAG run {state}; see {HOME.parent / 'dags-test.log'}")
    print(f"DAG run {state}: {sum(r[2] for r in rows):,} items, every result checked in order\n")
    print(f"{'approach':<22}{'task instances':>15}{'items':>9}{'wall time':>12}{'per item':>12}")
    for task_id, n_tis, items, seconds, _ in rows:
        name = ".iterate()" if task_id == "fetch_iterated" else ".expand()"
        print(f"{name:<22}{n_tis:>15,}{items:>9,}{seconds:>11.1f}s{1000 * seconds / items:>10.2f}ms")
    iterated, mapped = (r[3] / r[2] for r in rows)
    print(f"\nPer item, .iterate() costs {mapped / iterated:,.0f}x less than .expand() on this machine.")


if __name__ == "__main__":
    main()
