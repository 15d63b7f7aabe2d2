"""Mistakes in a DAG file fail when the DAG is parsed, with a message saying what to do."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

import airflow_iterate
from airflow_iterate import IterateUsageError


@pytest.fixture
def dag() -> Any:
    with DAG("parse_errors", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")) as d:
        yield d


@task
def fetch(path: str, mode: str = "rb") -> str:
    return path


def test_a_required_parameter_named_like_an_option_is_given_in_partial(dag: Any) -> None:
    @task
    def throttled(url: str, concurrency: int) -> str:
        return url

    # In .iterate(), concurrency= is always the option: the function's own needs .partial()
    with pytest.raises(IterateUsageError, match=r"requires 'concurrency'.*\.partial\(concurrency=\.\.\.\)"):
        throttled.iterate(url=["a"], concurrency=4)
    throttled.partial(concurrency=2).iterate(url=["a"], concurrency=4)
    throttled.iterate_kwargs([{"url": "a", "concurrency": 2}], concurrency=4)


def test_per_item_values_for_a_name_shared_with_an_option_say_which_is_which(dag: Any) -> None:
    @task
    def throttled(url: str, concurrency: int = 1) -> str:
        return url

    with pytest.raises(IterateUsageError, match=r"concurrency must be an int.*\.iterate_kwargs\("):
        throttled.iterate(url=["a", "b"], concurrency=[1, 2])


@pytest.mark.parametrize(
    "call",
    [
        lambda: fetch.iterate(path=["a"], concurency=8),
        lambda: fetch.iterate(path=["a"], concurency=[8]),
        lambda: fetch.iterate_kwargs([{"path": "a"}], concurency=8),
        lambda: fetch.iterate(path=["a"], item_retrys=2),
    ],
    ids=["scalar", "list", "iterate_kwargs", "item_retries"],
)
def test_a_misspelled_option_gets_a_suggestion(dag: Any, call: Any) -> None:
    with pytest.raises(IterateUsageError, match=r"did you mean (the option )?'(concurrency|item_retries)'"):
        call()


def test_positional_arguments_get_an_error_without_internal_names(dag: Any) -> None:
    with pytest.raises(IterateUsageError, match=r"keyword arguments only.*\.iterate\(path=") as raised:
        fetch.iterate(["a", "b"])
    assert "locals" not in str(raised.value)
    with pytest.raises(IterateUsageError, match=r"one positional argument, the list of dicts"):
        fetch.iterate_kwargs()
    assert fetch.iterate.__name__ == "iterate"


def test_unknown_argument(dag: Any) -> None:
    with pytest.raises(IterateUsageError, match="unexpected keyword argument 'pth'"):
        fetch.iterate(pth=["a"])


def test_iterating_over_a_context_key_is_refused(dag: Any) -> None:
    @task
    def uses_ti(x: int, ti: Any = None) -> int:
        return x

    with pytest.raises(IterateUsageError, match="context variable 'ti'"):
        uses_ti.iterate(ti=[1])
    with pytest.raises(IterateUsageError, match="iterate_index"):
        fetch.iterate_kwargs([{"path": "a", "iterate_index": 1}])


@pytest.mark.parametrize("bad", ["abc", 5, None, {1, 2}])
def test_a_literal_that_is_not_a_list_is_refused(dag: Any, bad: Any) -> None:
    with pytest.raises(IterateUsageError, match="for keyword argument 'path'; expected a list"):
        fetch.iterate(path=bad)


def test_an_argument_given_to_partial_cannot_be_iterated(dag: Any) -> None:
    with pytest.raises(IterateUsageError, match=r"already given to .partial"):
        fetch.partial(mode="r").iterate(mode=["rb"], path=["a"])


def test_nothing_to_iterate_over(dag: Any) -> None:
    with pytest.raises(IterateUsageError, match="at least one keyword argument"):
        fetch.iterate()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_concurrency(dag: Any, bad: Any) -> None:
    with pytest.raises(IterateUsageError, match="concurrency"):
        fetch.iterate(path=["a"], concurrency=bad)


@pytest.mark.parametrize(
    "option",
    [
        {"checkpoint_interval": float("nan")},  # the monitor thread would spin
        {"progress_interval": float("nan")},
        {"rate_limit": 1e-320},  # the second item would wait forever
        {"concurrency": 10**9},
    ],
    ids=repr,
)
def test_option_values_that_would_hang_or_exhaust_the_task_fail_at_parse_time(
    dag: Any, option: dict[str, Any]
) -> None:
    with pytest.raises(IterateUsageError, match=next(iter(option)).replace("_", ".")):
        fetch.iterate(path=["a"], **option)


def test_iterate_kwargs_wants_a_list_of_dicts(dag: Any) -> None:
    with pytest.raises(IterateUsageError, match="expects a list of dicts"):
        fetch.iterate_kwargs({"path": "a"})
    with pytest.raises(IterateUsageError, match="element 1 is str"):
        fetch.iterate_kwargs([{"path": "a"}, "b"])
    with pytest.raises(IterateUsageError, match="unexpected keyword argument 'nope'"):
        fetch.iterate_kwargs([{"path": "a", "nope": 1}])


def test_only_task_functions_can_be_iterated(dag: Any) -> None:
    with pytest.raises(IterateUsageError, match="takes a @task-decorated function"):
        airflow_iterate.iterate(print, x=[1])

    @task.bash
    def echo(word: str) -> str:
        return f"echo {word}"

    with pytest.raises(IterateUsageError, match=r"@task.bash tasks are not supported"):
        echo.iterate(word=["a"])


def test_usage_errors_are_type_and_value_errors_like_expand_ones() -> None:
    # .expand() raises TypeError for some mistakes and ValueError for others
    assert issubclass(IterateUsageError, TypeError)
    assert issubclass(IterateUsageError, ValueError)
