"""The Items tab's app without a browser: its JSON endpoints (FastAPI's TestClient, Airflow's own
auth manager and JWTs) on the ledger a real task wrote through dag.test(), the views it computes,
the plugin's registration, and the cross-site protection.

The browser, the UI's tabs and the API server's mounting are tested in tests/e2e.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import quote

import pendulum
import pytest
from airflow.sdk import DAG, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate_provider._plugin import IteratePlugin, items_views
from airflow_iterate_provider._ui import _csrf, _ledger
from tests.airflow._dagrun import ledger, run_dag

START = pendulum.datetime(2025, 1, 1, tz="UTC")
FAILING = [n for n in range(300) if n % 3 == 1]  # 100 failures: two pages of the ledger
HAS_STATE_STORE = True
try:
    import airflow.models.task_state_store  # noqa: F401
except ImportError:  # Airflow 3.1, 3.2
    HAS_STATE_STORE = False


@pytest.fixture(scope="module")
def dag_run() -> Any:
    with DAG("items_tab_api", schedule=None, start_date=START, catchup=False) as dag:

        @task
        def load(n: int) -> int:
            if n % 3 == 1:
                raise ConnectionError(f"refused record {n}" + (" (Zürich)" if n == 4 else ""))
            return n

        @task
        def total(values: list[Any]) -> int:
            return sum(v for v in values if v is not None)

        total(load.iterate(n=list(range(300)), max_failures=0.5, item_label="record {n:03d}"))

    return run_dag(dag)


@pytest.fixture(scope="module")
def client() -> Any:
    from airflow.api_fastapi.app import init_auth_manager
    from fastapi.testclient import TestClient

    from airflow_iterate_provider._ui._app import create_app

    init_auth_manager()
    with TestClient(create_app(), base_url="http://127.0.0.1:8080") as test_client:
        yield test_client


def token(role: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role)))


def as_user(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def ti_path(dag_run: Any, task_id: str = "load", map_index: int = -1) -> str:
    return f"{dag_run.dag_id}/{quote(dag_run.run_id, safe='')}/{task_id}/{map_index}"


def test_the_keys_are_where_airflow_iterate_writes_them() -> None:
    from airflow_iterate._airflow._ledger_store import LEDGER_STATE_PREFIX, LEDGER_XCOM_PREFIX
    from airflow_iterate._airflow._rerun import RERUN_REQUEST_KEY
    from airflow_iterate._core._ledger import LEDGER_KEY, LEDGER_SCHEMA, failure_page_key

    assert _ledger.STATE_STORE_LEDGER_KEY == LEDGER_STATE_PREFIX + LEDGER_KEY
    assert LEDGER_STATE_PREFIX + failure_page_key(3) == _ledger.STATE_STORE_PAGE_PREFIX + "3"
    assert _ledger.XCOM_LEDGER_KEY == LEDGER_XCOM_PREFIX + LEDGER_KEY
    assert LEDGER_XCOM_PREFIX + failure_page_key(3).replace("/", "_") == _ledger.XCOM_PAGE_PREFIX + "3"
    assert _ledger.RERUN_REQUEST_KEY == RERUN_REQUEST_KEY and _ledger.LEDGER_SCHEMA == LEDGER_SCHEMA


def test_the_plugin_is_an_entry_point_whose_module_loads_nothing_heavy() -> None:
    (entry,) = [
        e for e in entry_points(group="airflow.plugins") if e.dist and e.dist.name == "airflow-iterate"
    ]
    assert entry.load() is IteratePlugin
    probe = (
        "import sys, airflow.plugins_manager\n"
        "before = set(sys.modules)\n"
        "import airflow_iterate_provider._plugin\n"
        "print(sorted(m for m in set(sys.modules) - before if not m.startswith('airflow_iterate_provider')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout  # neither airflow_iterate, FastAPI nor the app


def test_the_views_are_tabs_under_the_base_url() -> None:
    ti, run = items_views("/airflow/")
    assert ti["destination"] == "task_instance" and run["destination"] == "dag_run"
    assert ti["href"] == "/airflow/iterate/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}"
    assert run["href"] == "/airflow/iterate/run/{DAG_ID}/{RUN_ID}"
    assert ti["url_route"] != run["url_route"] and ti["name"] == run["name"] == "Items"
    assert IteratePlugin.fastapi_apps[0]["url_prefix"] == "/iterate"


def test_every_route_needs_a_user(client: Any, dag_run: Any) -> None:
    for method, path in [
        ("GET", f"/ti/{ti_path(dag_run)}"),
        ("GET", f"/api/ti/{ti_path(dag_run)}"),
        ("GET", f"/api/ti/{ti_path(dag_run)}/find?index=1"),
        ("GET", f"/api/run/{dag_run.dag_id}/{quote(dag_run.run_id, safe='')}"),
        ("POST", f"/api/ti/{ti_path(dag_run)}/rerun-failed"),
        ("GET", "/static/items.js"),
    ]:
        assert client.request(method, path).status_code == 401, path
    assert client.get("/static/items.js", headers=as_user("viewer")).status_code == 200
    assert client.get("/static/../_app.py", headers=as_user("viewer")).status_code == 404


def test_a_page_of_failed_items_across_the_ledger_pages(client: Any, dag_run: Any) -> None:
    answer = client.get(
        f"/api/ti/{ti_path(dag_run)}",
        params={"failed_offset": 40, "failed_limit": 25},
        headers=as_user("viewer"),
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["iterated"] is True and data["poll"] is False and data["current"] is True
    assert data["store"] == ("task_state_store" if HAS_STATE_STORE else "xcom")
    document = data["ledger"]
    assert document["total"] == 300 and document["counts"]["failed"] == 100 and document["failed_pages"] == 2
    failed = data["failed"]
    # As the ledger stores them: pages of 50, in the order the items failed (mostly by index).
    stored = ledger(dag_run, "load", "ledger/failed/0") + ledger(dag_run, "load", "ledger/failed/1")
    assert failed["total"] == 100 and failed["items"] == stored[40:65]
    n = failed["items"][0]["index"]
    assert failed["items"][0] == {
        "index": n,
        "label": f"record {n:03d}",
        "error_type": "ConnectionError",
        "message": f"refused record {n}",
        "attempts": 1,
    }
    last = client.get(f"/api/ti/{ti_path(dag_run)}", params={"failed_offset": 90}, headers=as_user("viewer"))
    assert last.json()["failed"]["items"] == stored[90:]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("RECORD 29", [298, 295, 292]),  # case-insensitive, the database picks the pages
        ("record 0", [n for n in FAILING if n < 100]),
        ("100%", []),  # LIKE's wildcards are searched as text
        ("ord_0", []),
        ("zürich", []),  # labels only, not errors; non-ASCII reads every page
        ("ecord 00", [1, 4, 7]),
    ],
)
def test_searching_failed_items_by_label(client: Any, dag_run: Any, search: str, expected: list[int]) -> None:
    data = client.get(
        f"/api/ti/{ti_path(dag_run)}",
        params={"search": search, "failed_limit": 50},
        headers=as_user("viewer"),
    ).json()
    found = [item["index"] for item in data["failed"]["items"]]
    assert sorted(found) == sorted(expected[:50])
    assert data["failed"]["total"] == len(expected) if len(expected) <= 50 else data["failed"]["more"]


def test_finding_an_item_by_index_or_label(client: Any, dag_run: Any) -> None:
    def find(**params: Any) -> list[dict[str, Any]]:
        answer = client.get(f"/api/ti/{ti_path(dag_run)}/find", params=params, headers=as_user("viewer"))
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["found"]
        return found

    (failed,) = find(index=298)
    assert failed["status"] == "failed" and failed["failure"]["message"] == "refused record 298"
    assert find(index=3)[0]["status"] == "succeeded"
    assert find(index=300)[0]["status"] == "outside"
    assert [f["index"] for f in find(label="record 13")] == [130, 133, 136, 139]
    assert find(label="record 003") == []  # a succeeded item is found by its index only


def test_a_task_that_is_not_iterated_says_so(client: Any, dag_run: Any) -> None:
    data = client.get(f"/api/ti/{ti_path(dag_run, 'total')}", headers=as_user("viewer")).json()
    assert data["iterated"] is False and data["ledger"] is None and data["poll"] is False
    assert "not an iterated task" in data["message"]
    assert client.get(f"/api/ti/{ti_path(dag_run, 'nope')}", headers=as_user("viewer")).status_code == 404


def test_the_run_overview(client: Any, dag_run: Any) -> None:
    data = client.get(
        f"/api/run/{dag_run.dag_id}/{quote(dag_run.run_id, safe='')}", headers=as_user("viewer")
    ).json()
    assert data["chunked"] == [] and data["poll"] is False
    (load,) = data["tasks"]
    assert load["task_id"] == "load" and load["total"] == 300 and load["counts"]["failed"] == 100


def test_pages_escape_what_they_are_given(client: Any, dag_run: Any) -> None:
    page = client.get(
        "/ti/d%3Cscript%3E/r/t/%7BMAP_INDEX%7D", headers={**as_user("viewer"), "Host": "127.0.0.1:8080"}
    )
    assert page.status_code == 200
    assert "<script>" not in page.text and "d\\u003cscript\\u003e" in page.text
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    config = json.loads(page.text.split('id="iterate-config">', 1)[1].split("</script>", 1)[0])
    assert config["map_index"] == -1 and config["dag_id"] == "d<script>"


def test_rerun_needs_edit_access_the_page_token_and_the_same_origin(client: Any, dag_run: Any) -> None:
    path = f"/api/ti/{ti_path(dag_run)}/rerun-failed"
    viewer = client.get(f"/api/ti/{ti_path(dag_run)}", headers=as_user("viewer")).json()
    assert viewer["rerun"]["allowed"] is False and viewer["rerun"]["offered"] is False
    assert client.post(path, headers=as_user("viewer")).status_code == 403

    admin = as_user("admin")
    assert (
        client.get(f"/api/ti/{ti_path(dag_run)}", headers=admin).json()["rerun"]["offered"] is HAS_STATE_STORE
    )
    page = client.get(f"/ti/{ti_path(dag_run)}", headers=admin).text
    csrf = json.loads(page.split('id="iterate-config">', 1)[1].split("</script>", 1)[0])["csrf"]
    assert client.post(path, headers=admin).status_code == 403  # no page token
    assert client.post(path, headers={**admin, _csrf.HEADER: csrf + "0"}).status_code == 403
    forged = client.post(path, headers={**admin, _csrf.HEADER: csrf, "Origin": "https://evil.example"})
    assert forged.status_code == 403
    other_user = client.post(path, headers={**as_user("op"), _csrf.HEADER: csrf})
    assert other_user.status_code == 403  # the token is the admin's

    taken = client.post(path, headers={**admin, _csrf.HEADER: csrf, "Origin": "http://127.0.0.1:8080"})
    if not HAS_STATE_STORE:
        assert taken.status_code == 501 and "Airflow 3.3" in taken.json()["detail"]
        return
    assert taken.status_code == 200, taken.text
    assert taken.json() == {"cleared": ["load[-1]", "total[-1]"], "previous_try": 1}
    from tests.airflow._dagrun import task_instances

    assert ledger(dag_run, "load", "rerun_failed")["requested_by"] == "admin"
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        (audit,) = session.query(Log).filter_by(event="iterate_rerun_failed_items", run_id=dag_run.run_id)
        assert audit.owner == "admin" and audit.task_id == "load"
    assert {tid: state for tid, _, state in task_instances(dag_run)} == {"load": None, "total": None}
    data = client.get(f"/api/ti/{ti_path(dag_run)}", headers=admin).json()
    assert data["poll"] is True and data["rerun"]["offered"] is False  # following the next try
    again = client.post(path, headers={**admin, _csrf.HEADER: csrf})
    assert again.status_code == 409  # not while it is cleared or running


def test_views_of_the_ledger_format() -> None:
    assert list(_ledger.pages_for(40, 25, 50, 2)) == [0, 1]
    assert list(_ledger.pages_for(90, 25, 50, 2)) == [1]
    assert list(_ledger.pages_for(100, 25, 50, 2)) == []
    assert _ledger.like_fragment("Rec_1%!") == "rec!_1!%!!"
    assert _ledger.like_fragment('a"b') is None and _ledger.like_fragment("é") is None
    document = {"first_index": 100, "total": 50, "state": "running", "counts": {"in_flight": 1},
                "in_flight": [{"index": 120, "label": "x", "attempt": 2}],
                "done_ranges": [[100, 120], [121, 130]], "done_ranges_complete": True}  # fmt: skip
    assert _ledger.locate(document, 99, None)["status"] == "outside"
    assert _ledger.locate(document, 120, None)["status"] == "running"
    assert _ledger.locate(document, 125, None)["status"] == "succeeded"
    assert _ledger.locate(document, 140, None)["status"] == "pending"
    assert _ledger.locate(document, 105, {"index": 105})["status"] == "failed"


def test_the_overview_groups_chunks_and_lists_those_not_started() -> None:
    def doc(start: int, stop: int, state: str, failed: int) -> dict[str, Any]:
        counts = {"done": stop - start, "succeeded": stop - start - failed, "failed": failed}
        return {"chunk": {"start": start, "stop": stop}, "total": stop - start, "state": state, "rate": 10.0,
                "counts": counts}  # fmt: skip

    tis = {
        ("g.plan", -1): {"state": "success", "try_number": 1, "operator": "IteratePlanOperator"},
        ("g.chunks", 0): {"state": "success", "try_number": 1, "operator": "ChunkedPythonIterateOperator"},
        ("g.chunks", 1): {"state": "running", "try_number": 1, "operator": "ChunkedPythonIterateOperator"},
        ("g.chunks", 2): {"state": "queued", "try_number": 1, "operator": "ChunkedPythonIterateOperator"},
        ("g.gather", -1): {"state": None, "try_number": 0, "operator": "IterateGatherOperator"},
        ("plain", -1): {"state": "running", "try_number": 1, "operator": "_PythonIterateOperator"},
    }
    documents = {("g.chunks", 0): doc(0, 10, "success", 2), ("g.chunks", 1): doc(10, 20, "running", 1)}
    view = _ledger.overview(documents, tis)
    (group,) = view["chunked"]
    assert group["group"] == "g" and [c["map_index"] for c in group["chunks"]] == [0, 1, 2]
    assert group["counts"]["failed"] == 3 and group["state"] == "running" and group["total"] is None
    assert [t["task_id"] for t in view["tasks"]] == ["plain"]  # no ledger yet, still listed


def test_page_tokens() -> None:
    token = _csrf.make_token("secret", "alice", now=1_000_000)
    assert _csrf.valid_token("secret", "alice", token, now=1_000_100)
    assert not _csrf.valid_token("secret", "bob", token, now=1_000_100)
    assert not _csrf.valid_token("other", "alice", token, now=1_000_100)
    assert not _csrf.valid_token("secret", "alice", token, now=1_000_000 + _csrf.TOKEN_TTL + 1)
    assert not _csrf.valid_token("secret", "alice", "garbage")
    hosts = ["airflow.example:8080", "", "internal:8080"]
    assert not _csrf.cross_site({}, hosts)
    assert not _csrf.cross_site({"origin": "https://airflow.example:8080"}, hosts)
    assert _csrf.cross_site({"origin": "https://evil.example"}, hosts)
    assert _csrf.cross_site({"origin": "null"}, hosts)
    assert _csrf.cross_site({"sec-fetch-site": "cross-site"}, hosts)
