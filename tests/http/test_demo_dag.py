"""The HTTP demo's DAG (examples/dags/api_to_warehouse.py), end to end through dag.test().

The test server plays the partner's API over HTTPS with a bearer token and a rate limit the job
runs into; the delay proxy in front of it cuts every connection in the middle of the fetches.
The client waits out the 429s and sends the cut GETs again, and the warehouse still ends up with
every record exactly once, equal to what the API serves.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer, record

from tests.airflow._dagrun import run_dag, xcom

pytestmark = pytest.mark.slow

DAG_FILE = Path(__file__).resolve().parents[2] / "examples" / "dags" / "api_to_warehouse.py"
RECORDS = 300


def test_demo_dag_loads_every_record_once_despite_rate_limits_and_cut_connections(
    airflow_db: None,
    make_server: Callable[..., HTTPTestServer],
    make_proxy: Callable[..., DelayProxy],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server = make_server(records=RECORDS, tls=True, bearer_token="demo-token-1234", rate_limit=100, burst=20)
    proxy = make_proxy(server, delay=0.002)
    warehouse = tmp_path / "warehouse.db"
    api = {
        "conn_type": "http",
        "host": proxy.host,
        "port": proxy.port,
        "schema": "https",
        "extra": {"bearer_token": "demo-token-1234", "verify": str(server.ca_path)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DEMO_API", json.dumps(api))
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEMO_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    )

    spec = importlib.util.spec_from_file_location("api_to_warehouse_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.api_to_warehouse()

    # Cut every connection when the 100th detail has arrived, with dozens in flight.
    client_class = module.HTTPClient
    fetched = 0
    cuts: list[int] = []
    real_get_json = client_class.get_json

    async def get_json_then_cut(self: Any, url: str, **kwargs: Any) -> Any:
        nonlocal fetched
        detail = await real_get_json(self, url, **kwargs)
        if url.startswith("records/"):
            fetched += 1
            if fetched == 100:
                cuts.append(proxy.cut())
        return detail

    monkeypatch.setattr(client_class, "get_json", get_json_then_cut)
    dag_run = run_dag(dag)

    assert dag_run.state == "success"
    assert cuts and cuts[0] >= 1, "no connection was cut"
    assert xcom(dag_run, "load") == {"rows": RECORDS}
    statuses = server.stats().statuses
    assert statuses.get(429, 0) > 0, statuses  # the rate limit was met, and waited out
    with sqlite3.connect(warehouse) as db:
        rows = {
            row[0]: row for row in db.execute("SELECT id, name, amount, tags, text_length FROM api_records")
        }
    expected = {
        i: (i, f"record-{i}", record(i)["amount"], ",".join(record(i)["tags"]), len(record(i)["text"]))
        for i in range(1, RECORDS + 1)
    }
    assert rows == expected
