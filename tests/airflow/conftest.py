from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _migrated_db(airflow_db: None) -> None:
    """Every test here runs DAGs through dag.test(), which needs the metadata DB."""
