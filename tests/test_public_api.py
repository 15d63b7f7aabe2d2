"""The public surface is exactly what __all__ says, and the package registers as a provider."""

from __future__ import annotations

import ast
import importlib
import pickle
import pkgutil
import traceback
from pathlib import Path

import pytest

import airflow_iterate
from airflow_iterate._airflow._options import OPTION_NAMES, TASK_OPTION_NAMES, IterateOptions
from airflow_iterate._core import RUN_OPTION_NAMES, ItemFailure

PUBLIC = {
    "BaseAsyncOperator",
    "ItemFailure",
    "ItemTimeoutError",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateOperator",
    "IterateOptions",
    "IterateTimeoutError",
    "IterateUsageError",
    "RecordedItemError",
    "RerunRequestError",
    "SyncCallOnLoopError",
    "__version__",
    "aget_connection",
    "aget_variable",
    "axcom_pull",
    "iterate",
    "iterate_kwargs",
    "request_rerun_of_failed_items",
}


def test_all_lists_the_public_api_and_nothing_else() -> None:
    assert set(airflow_iterate.__all__) == PUBLIC
    public_names = {n for n in vars(airflow_iterate) if not n.startswith("_")} | {"__version__"}
    # Private modules are underscored; the public subpackages (sftp, http) appear once imported.
    assert public_names - {"annotations", "sftp", "http"} == PUBLIC


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


def _all_modules() -> list[str]:
    package = Path(airflow_iterate.__file__).parent
    return ["airflow_iterate"] + [
        info.name for info in pkgutil.walk_packages([str(package)], prefix="airflow_iterate.")
    ]


def test_public_names_show_the_public_module_in_tracebacks() -> None:
    # A user catches and reads airflow_iterate.ItemsFailedError, not a private module's path.
    error = airflow_iterate.ItemsFailedError(
        [ItemFailure(4, "'a.xml'", ValueError("bad"))], completed=3, total=5
    )
    assert traceback.format_exception_only(error)[0].startswith("airflow_iterate.ItemsFailedError: ")
    for name in PUBLIC - {"__version__", "BaseAsyncOperator", "IterateOptions"}:
        assert getattr(airflow_iterate, name).__module__ == "airflow_iterate", name
    # Airflow's own class (3.2+), re-exported, keeps its module; on 3.1 the package provides it.
    try:
        from airflow.sdk import BaseAsyncOperator as native
    except ImportError:
        assert airflow_iterate.BaseAsyncOperator.__module__ == "airflow_iterate"
    else:
        assert airflow_iterate.BaseAsyncOperator is native
        assert native.__module__.startswith("airflow.")


def test_every_exception_the_package_defines_is_an_iterate_error_and_public() -> None:
    import airflow_iterate.http
    import airflow_iterate.sftp

    public = (
        {getattr(airflow_iterate, n) for n in airflow_iterate.__all__}
        | {getattr(airflow_iterate.sftp, n) for n in airflow_iterate.sftp.__all__}
        | {getattr(airflow_iterate.http, n) for n in airflow_iterate.http.__all__}
    )
    defined: set[type[BaseException]] = set()
    for name in _all_modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            ours = str(getattr(obj, "__module__", "")).startswith("airflow_iterate")
            if isinstance(obj, type) and issubclass(obj, BaseException) and ours:
                defined.add(obj)
    # Private ones (signals between the package's own modules) never reach a user.
    reachable = {e for e in defined if not e.__name__.startswith("_")}
    assert len(reachable) > 10
    assert {e.__name__ for e in reachable if not issubclass(e, airflow_iterate.IterateError)} == set()
    assert {e.__name__ for e in reachable - public} == set()
    assert all(e.__name__.endswith("Error") for e in reachable & public)


@pytest.mark.parametrize(
    "error",
    [
        airflow_iterate.ItemsFailedError([ItemFailure(2, "'x'", KeyError("k"))], completed=1, total=3),
        airflow_iterate.IterateTimeoutError(30.0, completed=10, cancelled=2),
        airflow_iterate.IterateCancelledError("the task was killed", completed=5, cancelled=1),
        airflow_iterate.RecordedItemError("ValueError: bad row"),
        airflow_iterate.SyncCallOnLoopError("use aget_connection"),
    ],
    ids=type,
)
def test_errors_survive_pickling_with_their_message_and_counts(error: BaseException) -> None:
    # Executors and result backends pickle exceptions across processes.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    for attribute in ("completed", "cancelled", "total", "timeout", "reason"):
        assert getattr(copy, attribute, None) == getattr(error, attribute, None)


def test_each_option_is_the_runs_or_the_tasks_and_typed_once() -> None:
    assert OPTION_NAMES == RUN_OPTION_NAMES | TASK_OPTION_NAMES
    assert not RUN_OPTION_NAMES & TASK_OPTION_NAMES
    assert set(IterateOptions.__annotations__) == OPTION_NAMES


def test_only_the_compat_module_imports_airflow_internals() -> None:
    # Everything else uses the Task SDK's public names (airflow.sdk), so that an Airflow release
    # moving an internal breaks one module.
    package = Path(airflow_iterate.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(package)}: {n}"
                for n in names
                if n.split(".")[0] == "airflow" and n != "airflow.sdk"
            ]
    assert offenders == []
