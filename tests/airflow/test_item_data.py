"""Item data is data: values from XComs are never rendered as templates, as with ``.expand()``.

Templates written in the DAG (``.partial()`` arguments, literal items) render per item; a value an
upstream task returned (a file name listed on a partner's server) is passed on exactly as it is,
even when it looks like Jinja and names a secret.
"""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, BaseOperator, task

import airflow_iterate  # noqa: F401  - adds .iterate() to operator partials
from tests.airflow._dagrun import run_dag, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")
SECRET = "s3cr3t-PW"
LURE = "{{ var.value.warehouse_password }}.csv"


@pytest.fixture(autouse=True)
def _secret_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real Airflow Variable (from the environment, as a deployment may define it).
    monkeypatch.setenv("AIRFLOW_VAR_WAREHOUSE_PASSWORD", SECRET)


class Fetch(BaseOperator):
    template_fields = ("remote_path", "local_dir")

    def __init__(self, *, remote_path: Any, local_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote_path = remote_path
        self.local_dir = local_dir

    def execute(self, context: Any) -> str:
        return f"{self.remote_path} -> {self.local_dir}"


def test_operator_items_from_an_xcom_are_not_rendered() -> None:
    with DAG("xcom_items_are_data", schedule=None, start_date=START) as dag:

        @task
        def listed() -> list[str]:
            return [LURE, "plain.csv"]

        Fetch.partial(task_id="fetch", local_dir="/in/{{ task.task_id }}").iterate(remote_path=listed())

    results = xcom(run_dag(dag), "fetch")
    assert results == [f"{LURE} -> /in/fetch", "plain.csv -> /in/fetch"]
    assert all(SECRET not in r for r in results)


def test_operator_kwargs_dicts_from_an_xcom_are_not_rendered() -> None:
    with DAG("xcom_kwargs_are_data", schedule=None, start_date=START) as dag:

        @task
        def listed() -> list[dict[str, Any]]:
            return [{"remote_path": LURE, "local_dir": "{{ ds }}"}]

        Fetch.partial(task_id="fetch").iterate_kwargs(listed())

    assert xcom(run_dag(dag), "fetch") == [f"{LURE} -> {{{{ ds }}}}"]


def test_a_partial_argument_from_an_xcom_is_not_rendered_but_literal_templates_are() -> None:
    with DAG("xcom_partial_is_data", schedule=None, start_date=START) as dag:

        @task
        def directory() -> str:
            return "/in/{{ var.value.warehouse_password }}"

        Fetch.partial(task_id="fetch", local_dir=directory()).iterate(
            remote_path=["{{ task.task_id }}-{{ iterate_index }}.csv", "b.csv"]
        )

    assert xcom(run_dag(dag), "fetch") == [
        "fetch-0.csv -> /in/{{ var.value.warehouse_password }}",
        "b.csv -> /in/{{ var.value.warehouse_password }}",
    ]


def test_task_items_from_an_xcom_are_not_rendered() -> None:
    with DAG("xcom_task_items_are_data", schedule=None, start_date=START) as dag:

        @task
        def listed() -> list[str]:
            return [LURE]

        @task
        def fetch(path: str) -> str:
            return path

        fetch.iterate(path=listed())

    assert xcom(run_dag(dag), "fetch") == [LURE]


def test_chunked_operator_items_from_an_xcom_are_not_rendered() -> None:
    with DAG("xcom_chunk_items_are_data", schedule=None, start_date=START) as dag:

        @task
        def listed() -> list[str]:
            return [LURE, "a.csv", LURE]

        Fetch.partial(task_id="fetch", local_dir="/in").iterate(remote_path=listed(), chunks=2)

    assert xcom(run_dag(dag), "fetch.gather") == [f"{LURE} -> /in", "a.csv -> /in", f"{LURE} -> /in"]


def test_secrets_never_reach_the_failures_xcom() -> None:
    # XComs are stored in the metadata database unmasked: item reprs and error texts must be
    # redacted before they get there, as the task log redacts them.
    from airflow.sdk.log import mask_secret

    mask_secret("hunter2-api-key")
    with DAG("secrets_in_failures", schedule=None, start_date=START) as dag:

        @task
        def call(user: str, password: str) -> str:
            raise ConnectionError(f"GET https://api.example/v1?api_key=hunter2-api-key as {user} failed")

        call.iterate_kwargs([{"user": "ann", "password": "pw-of-ann-1"}], max_failures=None)

    failures = xcom(run_dag(dag), "call", key="iterate_failures")
    assert failures == [
        {
            "index": 0,
            "input": "{'password': '***', 'user': 'ann'}",
            "error": "ConnectionError: GET https://api.example/v1?api_key=*** as ann failed",
        }
    ]
