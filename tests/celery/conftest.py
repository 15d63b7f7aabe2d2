"""The Celery end-to-end tests' deployment: Redis, the Airflow components and two workers (see _cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._deployment import AirflowDeployment

from ._cluster import CeleryUnavailable, start_celery_deployment

DAGS_SOURCE = Path(__file__).parent / "dags"
DAG_ID = "iterate_chunked_celery"
WORKERS = ("worker-a", "worker-b")
DEFAULT_QUEUE = "default"


@pytest.fixture(scope="module")
def celery_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-celery-home")
    deployment: AirflowDeployment | None = None
    try:
        deployment = start_celery_deployment(
            home, DAGS_SOURCE, [DAG_ID], {name: [DEFAULT_QUEUE] for name in WORKERS}
        )
        yield deployment
    except CeleryUnavailable as exc:
        pytest.skip(str(exc))
    finally:
        if deployment is not None:
            deployment.stop()
