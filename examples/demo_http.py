"""`make demo-http`: a REST API into a warehouse, end to end, on this machine.

Starts the HTTP test server (``devtools/http_server.py``: uvicorn on 127.0.0.1) as the partner's
API: ``RECORDS`` records (default 5,000) of 2–10 KB, HTTPS with a CA made for the run, a bearer
token, and a rate limit (``RATE_LIMIT`` requests per second per client, default 1,000, with a burst
of 100) that the job runs into, answered with 429 and ``Retry-After``. In front of it a proxy adds
``RTT_MS`` of round trip (default 20 ms, like an API in another region). Then it runs the
``api_to_warehouse`` DAG with ``airflow dags test``: list the API (paginated by ``Link`` headers),
fetch every record's detail with ``.iterate()`` in ONE task instance, load the rows into a SQLite
warehouse through an Airflow connection. Finally it checks the warehouse against the records the
API serves, and prints what the API saw.

Everything lives under .demo/http/ (its own AIRFLOW_HOME, the server's files, the warehouse).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer, record

from .demo import _airflow, _task_report

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo" / "http"
HOME = DEMO / "airflow-home"
WAREHOUSE = DEMO / "warehouse.db"
DAG_ID = "api_to_warehouse"


def _environment(server: HTTPTestServer, host: str, port: int, token: str) -> dict[str, str]:
    api = {
        "conn_type": "http",
        "host": host,
        "port": port,
        "schema": "https",
        # the server's certificate is signed by a CA made for this run: trust it, and only it
        "extra": {"bearer_token": token, "verify": str(server.ca_path)},
    }
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "examples" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_DEMO_API=json.dumps(api),
        AIRFLOW_CONN_DEMO_WAREHOUSE=json.dumps({"conn_type": "sqlite", "host": str(WAREHOUSE)}),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def main() -> None:
    records = int(os.environ.get("RECORDS", "5000"))
    rtt_ms = float(os.environ.get("RTT_MS", "20"))
    rate_limit = float(os.environ.get("RATE_LIMIT", "1000"))
    HOME.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    server = HTTPTestServer(
        DEMO / "api", records=records, tls=True, bearer_token=token, rate_limit=rate_limit or None, burst=100
    )
    server.start()
    proxy = DelayProxy(server.host, server.port, delay=rtt_ms / 2000).start() if rtt_ms > 0 else None
    try:
        host, port = (proxy.host, proxy.port) if proxy else (server.host, server.port)
        print(
            f"The API: {records:,} records over HTTPS on {server.host}:{server.port} (uvicorn), a bearer "
            f"token, {rate_limit:,.0f} requests/s per client"
            + (f", via a {rtt_ms:g} ms RTT proxy on :{port}" if proxy else "")
        )
        env = _environment(server, host, port, token)
        WAREHOUSE.unlink(missing_ok=True)
        _airflow(env, "db", "migrate", log=DEMO / "db-migrate.log")
        _airflow(env, "dags", "reserialize", log=DEMO / "reserialize.log")
        server.reset()  # count the DAG run's requests only
        print(f"Running `airflow dags test {DAG_ID}` (log: {DEMO / 'dags-test.log'}) ...")
        started = time.monotonic()
        _airflow(env, "dags", "test", DAG_ID, log=DEMO / "dags-test.log")
        wall = time.monotonic() - started
        seen = server.stats()
        listing = len(server.requests("/list/"))
        detail_connections = {r.connection for r in server.requests("/records/")}
    finally:
        if proxy is not None:
            proxy.close()
        server.close()
    os.environ.update(env)
    _report(records, wall, seen, listing, len(detail_connections))


def _report(records: int, wall: float, seen: Any, listing: int, detail_connections: int) -> None:
    state, summary, fetch_seconds = _task_report(DAG_ID, "fetch_detail")
    with sqlite3.connect(WAREHOUSE) as db:
        rows = {
            row[0]: row for row in db.execute("SELECT id, name, amount, tags, text_length FROM api_records")
        }
    wrong = [
        i
        for i in range(1, records + 1)
        if rows.get(i)
        != (i, f"record-{i}", record(i)["amount"], ",".join(record(i)["tags"]), len(record(i)["text"]))
    ]
    elapsed = float(summary.get("elapsed", fetch_seconds))
    throttled = seen.statuses.get(429, 0)
    print(f"\nDAG run {state} in {wall:.1f}s (including Airflow start-up)")
    print(
        f'list_records: {records:,} ids from {listing} pages (Link: rel="next")\n'
        f"fetch_detail (ONE task instance, .iterate() over {records:,} records): fetched "
        f"{summary.get('succeeded', 0):,} details in {elapsed:.1f}s = {records / elapsed:,.0f} records/s, "
        f"{summary.get('retried', 0)} item retries"
    )
    print(f"  (the task instance took {fetch_seconds:.1f}s in all, its start-up and XCom push included)")
    print(
        f"the API saw: {seen.requests:,} requests, {throttled:,} answered 429 (each retried after its "
        f"Retry-After), the details over {detail_connections} connections "
        f"(at most {seen.connections_peak} open at once, {seen.connections_opened} opened in all)"
    )
    print(f"warehouse: {len(rows):,} rows")
    if state != "success" or wrong or len(rows) != records:
        sys.exit(
            f"CHECK FAILED: {len(wrong)} record(s) missing or different, {len(rows):,} rows for {records:,}"
        )
    print(
        f"check: every one of the {records:,} records loaded exactly once, each equal to what the API serves"
    )


if __name__ == "__main__":
    main()
