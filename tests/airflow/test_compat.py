"""What the Airflow layer feature-detects is found on the Airflow under test (3.1 and later)."""

from __future__ import annotations

import datetime as dt

import airflow_iterate
from airflow_iterate._airflow._classic import is_async_operator
from airflow_iterate._airflow._compat import stats_module, xcom_serde


def test_metrics_have_somewhere_to_go() -> None:
    stats = stats_module()
    assert stats is not None
    stats.gauge("iterate.test", 1, tags={"dag_id": "d", "task_id": "t"})


def test_checkpoints_and_result_checks_use_the_xcom_encoding() -> None:
    serde = xcom_serde()
    assert serde is not None
    encode, decode = serde
    value = (1, "a", dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    assert decode(encode(value)) == value


def test_subclasses_of_the_exported_base_async_operator_run_on_the_event_loop() -> None:
    class Probe(airflow_iterate.BaseAsyncOperator):
        async def aexecute(self, context: object) -> int:
            return 1

    assert is_async_operator(Probe, {})
