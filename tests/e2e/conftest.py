"""Fixtures for the end-to-end tests: one real Airflow deployment shared by the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._deployment import AirflowDeployment

DAGS_SOURCE = Path(__file__).parent / "dags"
#: every DAG the tests use; startup waits until all of them are parsed and served by the API
EXPECTED_DAG_IDS = (
    "iterate_e2e",
    "iterate_resume_e2e",
    "iterate_connections_e2e",
    "iterate_ledger_e2e",
    "iterate_rerun_e2e",
    "iterate_items_tab_e2e",
    "iterate_items_tab_failures_e2e",
    "iterate_items_tab_chunked_e2e",
)
#: SimpleAuthManager's users (name: role): the API client logs in as the first; the Items tab's tests
#: check what a viewer may not do, and that nobody unauthenticated gets anything
E2E_USERS = {"admin": "admin", "viewer": "viewer"}


@pytest.fixture(scope="session")
def airflow_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    deployment = AirflowDeployment(tmp_path_factory.mktemp("airflow-home"), DAGS_SOURCE, users=E2E_USERS)
    try:
        deployment.start(EXPECTED_DAG_IDS)
        yield deployment
    finally:
        deployment.stop()
