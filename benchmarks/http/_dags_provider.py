"""The deployment's DAGs that use only the http provider: rows 1 and 2, and its paginated listings.

Copied into the benchmark deployment's dags folder next to ``settings.json``, which names for
each DAG its connection and its size. A file of its own, importing nothing of this package, so
that a task instance of these rows parses only what the provider's users' DAG files would. Every
detail call parses the record's JSON and returns its size in bytes (the same small XCom in every
row, checked against the server's records); every listing returns the ids it read.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.http.triggers.http import HttpResponseSerializer
from airflow.sdk import DAG

SETTINGS = json.loads(Path(__file__).with_name("settings.json").read_text())
START = pendulum.datetime(2024, 1, 1, tz="UTC")
#: The operators' task retries. A deferred task instance whose trigger fires before the scheduler
#: has processed the executor's "success" for the deferring run is failed as "state changed
#: externally" (apache/airflow#66374, #71580, #72716); a production DAG has retries for that.
RETRIES = {"retries": SETTINGS["retries"], "retry_delay": datetime.timedelta(seconds=1)}


def _size(response: Any) -> int:
    response.json()
    return len(response.content)


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


# -- rows 1 and 2: a mapped HttpOperator per call, in the worker / through the triggerer ----------


for dag_id, deferrable in (("http_expand", False), ("http_deferrable", True)):
    spec = SETTINGS["dags"].get(dag_id)
    if spec is None:
        continue
    with _dag(dag_id) as dag:
        HttpOperator.partial(
            task_id="get",
            http_conn_id=spec["conn_id"],
            method="GET",
            response_filter=_size,
            deferrable=deferrable,
            **RETRIES,
        ).expand(endpoint=[f"records/{i}" for i in range(1, spec["calls"] + 1)])
    globals()[dag_id] = dag


# -- the paginated listing: page-number pagination, one page after the other ----------------------


def _page_pagination(pages: int) -> Any:
    """HttpOperator's ``pagination_function``: the next page's parameters, until ``pages`` were read."""

    def next_page(response: Any) -> dict[str, Any] | None:
        body = response.json()
        if body["page"] >= min(body["total_pages"], pages):
            return None
        return {"data": {"page": body["page"] + 1, "per_page": body["per_page"]}}

    return next_page


def _page_ids(responses: list[Any]) -> list[int]:
    return [item["id"] for response in responses for item in response.json()["results"]]


class SerializablePagesHttpOperator(HttpOperator):
    """``HttpOperator`` whose deferrable pagination survives the trip through the metadata DB.

    The provider (6.3.0) defers each next page with the previous pages as ``requests.Response``
    objects in the resume kwargs, which the Task SDK cannot serialize: the listing fails on its
    second page. This passes them as the provider's own ``HttpResponseSerializer`` dicts (what the
    trigger event already carries) and turns them back on resume; nothing else changes.
    """

    def defer(self, *, trigger: Any, method_name: str, kwargs: Any = None, timeout: Any = None) -> Any:
        if kwargs and kwargs.get("paginated_responses"):
            pages = [HttpResponseSerializer.serialize(r) for r in kwargs["paginated_responses"]]
            kwargs = {**kwargs, "paginated_responses": pages}
        return super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def execute_complete(self, context: Any, event: dict[str, Any], paginated_responses: Any = None) -> Any:
        previous = [HttpResponseSerializer.deserialize(r) for r in paginated_responses or []]
        return super().execute_complete(context, event, previous or None)


for dag_id, operator, deferrable in (
    ("http_pages_deferrable", HttpOperator, True),
    ("http_pages_deferrable_serializable", SerializablePagesHttpOperator, True),
    ("http_pages_sync", HttpOperator, False),
):
    spec = SETTINGS["dags"].get(dag_id)
    if spec is None:
        continue
    with _dag(dag_id) as dag:
        operator(
            task_id="list",
            http_conn_id=spec["conn_id"],
            method="GET",
            endpoint="list/page",
            data={"page": 1, "per_page": spec["page_size"]},
            pagination_function=_page_pagination(spec["pages"]),
            response_filter=_page_ids,
            deferrable=deferrable,
            # as released it fails on its second page whatever the retries
            **({} if dag_id == "http_pages_deferrable" else RETRIES),
        )
    globals()[dag_id] = dag
