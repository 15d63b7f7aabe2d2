"""Argument forms of iterate(): cross product, dict pairs, iterate_kwargs, bad input."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

import airflow_iterate._core
from airflow_iterate._core import IterateInputError, check_iterable, cross_product, kwargs_stream


def test_single_argument() -> None:
    assert list(cross_product({"x": [1, 2, 3]})) == [{"x": 1}, {"x": 2}, {"x": 3}]


def test_cross_product_has_the_last_argument_varying_fastest_like_expand() -> None:
    got = list(cross_product({"a": [1, 2], "b": ["x", "y"], "c": [True, False]}))
    combos = itertools.product([1, 2], ["x", "y"], [True, False])
    want = [dict(zip("abc", combo, strict=True)) for combo in combos]
    assert got == want


def test_dicts_iterate_as_key_value_pairs_like_expand() -> None:
    assert list(cross_product({"pair": {"k1": 1, "k2": 2}})) == [{"pair": ("k1", 1)}, {"pair": ("k2", 2)}]


def test_an_empty_argument_gives_no_items() -> None:
    assert list(cross_product({"a": [1, 2], "b": []})) == []


def test_first_argument_is_streamed() -> None:
    pulled = 0

    def stream() -> Iterator[int]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield i

    items = cross_product({"a": stream(), "b": [0, 1]})
    assert next(items) == {"a": 0, "b": 0}
    assert pulled == 1


@pytest.mark.parametrize("bad", [None, 5, "abc", b"abc", 3.5])
def test_non_iterables_are_refused_with_the_argument_name(bad: object) -> None:
    with pytest.raises(IterateInputError, match=r"'paths'.*expected a list") as info:
        check_iterable("paths", bad, source="XCom of task 'list_files'")
    assert "list_files" in str(info.value)


def test_kwargs_stream_accepts_a_list_of_dicts() -> None:
    assert list(kwargs_stream([{"a": 1}, {"a": 2, "b": 3}])) == [{"a": 1}, {"a": 2, "b": 3}]


def test_kwargs_stream_refuses_a_dict_and_names_the_fix() -> None:
    with pytest.raises(IterateInputError, match=r"is a dict.*list of dicts"):
        list(kwargs_stream({"a": 1}))


def test_kwargs_stream_names_the_bad_element() -> None:
    with pytest.raises(IterateInputError, match="element 1 is int 7"):
        list(kwargs_stream([{"a": 1}, 7]))
    with pytest.raises(IterateInputError, match="element 0 has key 3"):
        list(kwargs_stream([{3: "x"}]))


def test_the_core_never_imports_airflow() -> None:
    core = Path(airflow_iterate._core.__file__).parent
    offenders = []
    for path in sorted(core.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "airflow"]
    assert offenders == []
