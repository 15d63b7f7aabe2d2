"""``python -m airflow_iterate rerun-failed DAG_ID RUN_ID TASK_ID``: rerun only the failed items."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ._airflow._rerun_request import RerunRequestError, request_rerun_of_failed_items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_iterate")
    commands = parser.add_subparsers(dest="command", required=True)
    rerun = commands.add_parser(
        "rerun-failed",
        help="make the next run of an iterated task instance rerun only its failed items, and clear it",
    )
    rerun.add_argument("dag_id")
    rerun.add_argument("run_id")
    rerun.add_argument("task_id", help="the iterated task (a chunk: TASK.chunks with --map-index)")
    rerun.add_argument("--map-index", type=int, default=-1)
    rerun.add_argument(
        "--api-url",
        default=os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080"),
        help="the API server (default: $AIRFLOW__API__BASE_URL or http://127.0.0.1:8080)",
    )
    rerun.add_argument(
        "--no-downstream", action="store_true", help="clear only this task, not the tasks after it"
    )
    arguments = parser.parse_args(argv)
    token = os.environ.get("AIRFLOW_API_TOKEN")
    if not token:
        parser.error("set AIRFLOW_API_TOKEN to an API token (POST /auth/token on the API server)")
    try:
        answer = request_rerun_of_failed_items(
            arguments.api_url,
            arguments.dag_id,
            arguments.run_id,
            arguments.task_id,
            map_index=arguments.map_index,
            token=token,
            include_downstream=not arguments.no_downstream,
        )
    except RerunRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cleared = [f"{ti.get('task_id')}[{ti.get('map_index')}]" for ti in answer.get("task_instances", [])]
    print(json.dumps({"cleared": cleared}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
