"""The public surface is exactly what __all__ says, and the package registers as a provider."""

from __future__ import annotations

import airflow_iterate

PUBLIC = {
    "BaseAsyncOperator",
    "ItemFailure",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateOperator",
    "IterateTimeoutError",
    "IterateUsageError",
    "__version__",
    "aget_connection",
    "aget_variable",
    "axcom_pull",
    "iterate",
    "iterate_kwargs",
}


def test_all_lists_the_public_api_and_nothing_else() -> None:
    assert set(airflow_iterate.__all__) == PUBLIC
    public_names = {n for n in vars(airflow_iterate) if not n.startswith("_")} | {"__version__"}
    # Private modules are underscored; the one public subpackage (sftp) appears once imported.
    assert public_names - {"annotations", "sftp"} == PUBLIC


def test_every_error_is_an_iterate_error() -> None:
    for name in PUBLIC:
        obj = getattr(airflow_iterate, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, airflow_iterate.IterateError)


def test_task_functions_get_iterate_methods_on_import() -> None:
    from airflow.sdk import task

    @task
    def f(x: int) -> int:
        return x

    assert callable(f.iterate) and callable(f.iterate_kwargs)
    assert callable(f.partial(x=1).iterate)


def test_registered_as_an_airflow_provider() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert "airflow-iterate" in providers
    assert providers["airflow-iterate"].version == airflow_iterate.__version__
