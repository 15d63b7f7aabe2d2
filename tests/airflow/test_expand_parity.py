"""Parity with ``.expand()``: each case runs ``.expand()`` and ``.iterate()`` side by side in one DAG run.

A DAG that works with ``.expand()`` works unchanged with ``.iterate()``: the same argument forms,
the same values per item, the same errors at parse time. Where iterate deliberately differs (one
task instance, no map index, parse-time refusals) the test asserts the documented difference
(README, "Porting from .expand()"). Sections 1 to 9 are the divergences found when porting
Airflow's own expand tests; the rest ports more of expand's argument semantics.
"""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, BaseOperator, TaskGroup, get_current_context, task

import airflow_iterate  # noqa: F401  - adds .iterate() to operator partials
from airflow_iterate import IterateUsageError
from tests.airflow._dagrun import mapped_xcoms, rendered_map_indexes, run_dag, task_instances, xcom

try:
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef]

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def make_dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, **kwargs)


def states(dag_run: Any) -> dict[tuple[str, int], str | None]:
    return {(task_id, map_index): state for task_id, map_index, state in task_instances(dag_run)}


class Echo(BaseOperator):
    template_fields = ("value",)

    def __init__(self, *, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def execute(self, context: Any) -> Any:
        return self.value


# -- 1. a classic operator in a task group -----------------------------------------------------


def test_a_classic_operator_in_a_task_group_gets_the_group_prefix_once() -> None:
    with make_dag("parity_task_group") as dag, TaskGroup("tg1"):
        Echo.partial(task_id="expanded").expand(value=[1, 2])
        Echo.partial(task_id="iterated").iterate(value=[1, 2])
        with TaskGroup("inner"):
            Echo.partial(task_id="iterated").iterate(value=[3])
            Echo.partial(task_id="chunked").iterate(value=[4, 5], chunks=2)

    assert {"tg1.expanded", "tg1.iterated", "tg1.inner.iterated", "tg1.inner.chunked.gather"} <= set(
        dag.task_ids
    )
    dag_run = run_dag(dag)
    assert xcom(dag_run, "tg1.iterated") == mapped_xcoms(dag_run, "tg1.expanded") == [1, 2]
    assert xcom(dag_run, "tg1.inner.iterated") == [3]
    assert xcom(dag_run, "tg1.inner.chunked.gather") == [4, 5]


# -- 2. iterating over params ------------------------------------------------------------------


class ParamsEcho(BaseOperator):
    template_fields = ("text",)

    def __init__(self, *, text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def execute(self, context: Any) -> Any:
        return [self.text, dict(context["params"]), dict(self.params)]


def test_iterating_over_params_merges_them_with_the_partial_params() -> None:
    with make_dag("parity_params", params={"d": "dag"}) as dag:
        for task_id, method in (("expanded", "expand"), ("iterated", "iterate")):
            text = "{{ params.a }}-{{ params.c }}"
            partial = ParamsEcho.partial(task_id=task_id, text=text, params={"a": 1, "c": "partial"})
            # every item sets "a": in dag.test() mapped instances share the partial's Param objects
            getattr(partial, method)(params=[{"a": 2}, {"a": 10, "b": 3}])

    dag_run = run_dag(dag)
    expanded = mapped_xcoms(dag_run, "expanded")
    merged = [{"d": "dag", "a": 2, "c": "partial"}, {"d": "dag", "a": 10, "c": "partial", "b": 3}]
    assert expanded == [["2-partial", merged[0], merged[0]], ["10-partial", merged[1], merged[1]]]
    assert xcom(dag_run, "iterated") == expanded


# -- 3. a nested template object in .partial() -------------------------------------------------


class Nested:
    template_fields = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:  # how the DAG serializes it
        return f"Nested({self.text!r})"


class NestedOp(BaseOperator):
    template_fields = ("nested", "value")

    def __init__(self, *, nested: Nested, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nested = nested
        self.value = value

    def execute(self, context: Any) -> str:
        return f"{self.value}:{self.nested.text}"


VALUES = ["a", "{{ ds }}", "c"]


def test_a_nested_template_object_in_partial_is_rendered_per_item() -> None:
    with make_dag("parity_nested") as dag:

        @task
        def listed(start: int, stop: int) -> list[str]:
            return VALUES[start:stop]

        template = "<{{ task.value }}>"
        everything = listed(0, 3)
        NestedOp.partial(task_id="iterated", nested=Nested(template)).iterate(value=everything)
        # a literal item is shared by the rows of a cross product: each row renders its own copy
        NestedOp.partial(task_id="product").iterate(value=everything, nested=[Nested(template)])
        # dag.test() runs the instances of a mapped task in one process, sharing the partial's
        # objects; deployed, each has a process of its own: one expand per item stands for that
        for i in range(3):
            part = listed.override(task_id=f"listed_{i}")(i, i + 1)
            NestedOp.partial(task_id=f"expanded_{i}", nested=Nested(template)).expand(value=part)

    dag_run = run_dag(dag)
    expanded = [value for i in range(3) for value in mapped_xcoms(dag_run, f"expanded_{i}")]
    # the template in .partial() renders per item; the value from the XCom is data, never rendered
    assert expanded == ["a:<a>", "{{ ds }}:<{{ ds }}>", "c:<c>"]
    assert xcom(dag_run, "iterated") == xcom(dag_run, "product") == expanded


class Client:
    """No template fields: rendering leaves it alone, so the items share it."""


class UsesClient(BaseOperator):
    template_fields = ("options",)

    def __init__(self, *, options: dict[str, Any], value: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = options
        self.value = value

    def execute(self, context: Any) -> list[Any]:
        return [self.options["path"], id(self.options["client"])]


CLIENT = Client()


def test_an_object_without_template_fields_in_partial_stays_one_object_for_every_item() -> None:
    with make_dag("parity_shared_object") as dag:
        options = {"client": CLIENT, "path": "/in/{{ task.value }}"}
        UsesClient.partial(task_id="use", options=options).iterate(value=[1, 2, 3])

    assert xcom(run_dag(dag), "use") == [[f"/in/{n}", id(CLIENT)] for n in (1, 2, 3)]


# -- 4. map_index_template ---------------------------------------------------------------------


class Named(BaseOperator):
    def __init__(self, *, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name

    def execute(self, context: Any) -> str:
        context["map_name"] = f"task1-{self.name}"
        return self.name


def test_map_index_template_labels_mapped_instances_and_never_fails_an_iterated_task() -> None:
    with make_dag("parity_map_index_template") as dag:

        @task(map_index_template="{{ map_name }}")
        def named(name: str) -> str:
            get_current_context()["map_name"] = f"task1-{name}"  # type: ignore[typeddict-unknown-key]
            return name

        named.override(task_id="task_expanded").expand(name=["a", "b"])
        named.override(task_id="task_iterated").iterate(name=["a", "b"])
        template = "{{ map_name }}"
        Named.partial(task_id="op_expanded", map_index_template=template).expand(name=["a", "b"])
        Named.partial(task_id="op_iterated", map_index_template=template).iterate(name=["a", "b"])
        Named.partial(task_id="op_chunked", map_index_template=template).iterate(name=["a", "b"], chunks=2)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    for kind in ("task", "op"):
        assert rendered_map_indexes(dag_run, f"{kind}_expanded") == ["task1-a", "task1-b"]
        # one task instance for every item: it has no map index, so no label (not the last item's)
        assert rendered_map_indexes(dag_run, f"{kind}_iterated") == [None]
        assert xcom(dag_run, f"{kind}_iterated") == mapped_xcoms(dag_run, f"{kind}_expanded") == ["a", "b"]
    assert xcom(dag_run, "op_chunked.gather") == ["a", "b"]


# -- 5. one key of a multiple_outputs task -----------------------------------------------------


def test_one_key_of_an_iterated_multiple_outputs_task_is_the_list_of_its_values() -> None:
    with make_dag("parity_multiple_outputs") as dag:

        @task(multiple_outputs=True)
        def split(x: int) -> dict[str, int]:
            return {"a": x, "b": x * 10}

        @task
        async def asplit(x: int) -> dict[str, int]:  # multiple_outputs from the annotation
            return {"a": x, "b": x * 10}

        @task
        def collect(values: Any) -> list[Any]:
            return list(values)

        outputs = {
            "expanded": split.override(task_id="split_expanded").expand(x=[1, 2, 3]),
            "iterated": split.override(task_id="split_iterated").iterate(x=[1, 2, 3]),
            "async": asplit.iterate(x=[1, 2, 3]),
            "chunked": split.override(task_id="split_chunked").iterate(x=[1, 2, 3], chunks=2),
        }
        for name, output in outputs.items():
            collect.override(task_id=f"{name}_a")(output["a"])
            collect.override(task_id=f"{name}_all")(output)

    dag_run = run_dag(dag)
    for name in outputs:
        assert xcom(dag_run, f"{name}_a") == [1, 2, 3], name
        assert xcom(dag_run, f"{name}_all") == [{"a": x, "b": x * 10} for x in (1, 2, 3)], name
    expanded_b = mapped_xcoms(dag_run, "split_expanded", key="b")
    assert xcom(dag_run, "split_iterated", key="b") == expanded_b


# -- 6. a dict from an XCom repeating a .partial() argument ------------------------------------


class Convert(BaseOperator):
    def __init__(self, *, value: int, unit: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value
        self.unit = unit

    def execute(self, context: Any) -> str:
        return f"{self.value}{self.unit}"


def test_a_dict_from_an_xcom_repeating_a_partial_argument_fails_that_item_as_expand_kwargs_does() -> None:
    with make_dag("parity_kwargs_duplicate") as dag:

        @task
        def rows() -> list[dict[str, Any]]:
            return [{"value": 1}, {"value": 2, "unit": "cm"}, {"value": 3}]

        @task
        def convert(value: int, unit: str) -> str:
            return f"{value}{unit}"

        listed = rows()
        convert.partial(unit="m").override(task_id="expanded").expand_kwargs(listed)
        convert.partial(unit="m").override(task_id="iterated").iterate_kwargs(listed, max_failures=None)
        Convert.partial(task_id="op_expanded", unit="m").expand_kwargs(listed)
        Convert.partial(task_id="op_iterated", unit="m").iterate_kwargs(listed, max_failures=None)

    dag_run = run_dag(dag)
    by_ti = states(dag_run)
    for prefix, reason in (("", "mapping already partial"), ("op_", "unmappable or already specified")):
        assert [by_ti[f"{prefix}expanded", i] for i in range(3)] == ["success", "failed", "success"]
        assert mapped_xcoms(dag_run, f"{prefix}expanded") == ["1m", "3m"]
        # one task instance: the item fails (within max_failures here), the others ran
        assert by_ti[f"{prefix}iterated", -1] == "success"
        assert xcom(dag_run, f"{prefix}iterated") == ["1m", None, "3m"]
        failures = xcom(dag_run, f"{prefix}iterated", key="iterate_failures")
        assert [f["index"] for f in failures] == [1]
        assert f"TypeError: {reason} argument: unit" in failures[0]["error"]


# -- 7. a @task argument given both to .partial() and to the call ------------------------------


def test_an_argument_in_partial_and_in_the_call_is_refused_with_how_to_port() -> None:
    with make_dag("parity_partial_and_call") as dag:

        @task
        def convert(value: int, unit: str) -> str:
            return f"{value}{unit}"

        # expand parses, and the item's value wins over the partial's
        convert.partial(unit="m").override(task_id="expanded").expand(value=[1], unit=["cm", "mm"])
        with pytest.raises(IterateUsageError, match=r"remove 'unit' from \.partial\(\)"):
            convert.partial(unit="m").override(task_id="iterated").iterate(value=[1], unit=["cm", "mm"])
        # expand_kwargs fails such instances when they run (see above); iterate_kwargs at parse time
        with pytest.raises(IterateUsageError, match=r"remove 'unit' from \.partial\(\) or from the dicts"):
            convert.partial(unit="m").iterate_kwargs([{"value": 1, "unit": "cm"}])
        # the port: the iterated values alone
        convert.override(task_id="ported").iterate(value=[1], unit=["cm", "mm"])

    dag_run = run_dag(dag)
    assert xcom(dag_run, "ported") == mapped_xcoms(dag_run, "expanded") == ["1cm", "1mm"]


# -- 8. error types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [{"message": "hi"}, {"number": 1}, {"run_id": ["a", "b"]}, {"number": [1], "run_id": ["a"]}],
    ids=repr,
)
def test_usage_errors_are_value_errors_where_expand_raises_value_error(arguments: dict[str, Any]) -> None:
    @task
    def show(message: str = "", number: int = 0, run_id: str = "") -> str:
        return message

    with make_dag("parity_errors"):
        with pytest.raises(ValueError):
            show.expand(**arguments)
        with pytest.raises(ValueError) as iterated:
            show.iterate(**arguments)
    assert isinstance(iterated.value, IterateUsageError)
    assert isinstance(iterated.value, TypeError)  # as before, for code that catches TypeError


def test_operator_usage_errors_are_value_errors_where_expand_raises_value_error() -> None:
    with make_dag("parity_operator_errors"):
        with pytest.raises(ValueError, match="unexpected type 'int'"):
            Echo.partial(task_id="expanded").expand(value=1)
        with pytest.raises(ValueError, match="for keyword argument 'value'"):
            Echo.partial(task_id="iterated").iterate(value=1)


# -- 9. log noise ------------------------------------------------------------------------------


class Outer(BaseOperator):
    """Calls another operator's execute itself: Airflow warns about that one, and still should."""

    def __init__(self, *, value: int, nest: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value
        self.nest = nest

    def execute(self, context: Any) -> int:
        if self.nest:
            return int(Echo(task_id="inner_echo", value=self.value).execute(context))
        return self.value


def test_items_run_inside_the_task_runner_and_do_not_warn(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("parity_runner_warning") as dag:
        Outer.partial(task_id="expanded").expand(value=[1, 2, 3])
        Outer.partial(task_id="iterated").iterate(value=[1, 2, 3])
        Outer.partial(task_id="nesting", nest=True).iterate(value=[7])

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert xcom(dag_run, "iterated") == mapped_xcoms(dag_run, "expanded") == [1, 2, 3]
    assert "Outer.execute cannot be called outside of the Task Runner" not in logs
    # only that warning is gone: an operator an item runs itself is still reported
    assert xcom(dag_run, "nesting") == [7]
    assert "Echo.execute cannot be called outside of the Task Runner" in logs


# -- 10. argument forms: literals, XComs, the cross product ------------------------------------


def test_literal_and_xcom_arguments_give_the_same_items_in_the_same_order() -> None:
    with make_dag("parity_forms") as dag:

        @task
        def listed() -> list[str]:
            return ["x", "y"]

        @task
        def show(a: Any, b: Any, c: Any = "-") -> str:
            return f"{a}|{b}|{c}"

        xs = listed()
        forms: dict[str, dict[str, Any]] = {
            "lists": {"a": [1, 2], "b": ["p", "q", "r"]},
            "tuple_dict": {"a": (1, 2), "b": {"k1": "v1", "k2": "v2"}},  # a dict: (key, value) pairs
            "xcoms": {"a": xs, "b": [1, 2], "c": xs},  # the last argument varies fastest
            "one_item": {"a": ["only"], "b": [None]},
        }
        for name, arguments in forms.items():
            show.override(task_id=f"{name}_expanded").expand(**arguments)
            show.override(task_id=f"{name}_iterated").iterate(**arguments)
            Echo.partial(task_id=f"{name}_op_expanded").expand(value=arguments["a"])
            Echo.partial(task_id=f"{name}_op_iterated").iterate(value=arguments["a"])

    dag_run = run_dag(dag)
    for name in forms:
        for kind in ("", "op_"):
            expanded = mapped_xcoms(dag_run, f"{name}_{kind}expanded")
            assert xcom(dag_run, f"{name}_{kind}iterated") == expanded, (name, kind)
    assert xcom(dag_run, "xcoms_iterated")[:3] == ["x|1|x", "x|1|y", "x|2|x"]


def test_map_zip_and_concat_inputs_give_the_same_items() -> None:
    with make_dag("parity_xcom_arg_ops") as dag:

        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task
        def letters() -> list[str]:
            return ["a", "b"]

        @task
        def show(v: Any) -> str:
            return f"<{v!r}>"

        ns, ls = numbers(), letters()
        inputs = {
            "map": ns.map(lambda n: n * 10),
            "zip": ns.zip(ls),
            "zip_fill": ns.zip(ls, fillvalue="?"),
            "concat": ns.concat(ls),
            "map_zip": ns.zip(ls).map(lambda pair: f"{pair[0]}{pair[1]}"),
        }
        for name, value in inputs.items():
            show.override(task_id=f"{name}_expanded").expand(v=value)
            show.override(task_id=f"{name}_iterated").iterate(v=value)

    dag_run = run_dag(dag)
    for name in inputs:
        assert xcom(dag_run, f"{name}_iterated") == mapped_xcoms(dag_run, f"{name}_expanded"), name
    assert xcom(dag_run, "zip_fill_iterated") == ["<(1, 'a')>", "<(2, 'b')>", "<(3, '?')>"]


def test_expand_kwargs_shapes_give_the_same_items() -> None:
    with make_dag("parity_kwargs_shapes") as dag:

        @task
        def rows() -> list[dict[str, Any]]:
            return [{"value": 1, "unit": "m"}, {"value": 2, "unit": "cm"}]

        @task
        def row(value: int) -> dict[str, Any]:
            return {"value": value, "unit": "km"}

        @task
        def numbers() -> list[int]:
            return [7, 8]

        @task
        def convert(value: int, unit: str = "mm") -> str:
            return f"{value}{unit}"

        shapes: dict[str, Any] = {
            "literal": [{"value": 1}, {"value": 2, "unit": "cm"}],
            "xcom": rows(),
            "elements": [row(5), {"value": 6}, row.override(task_id="row_7")(7)],
            "map": numbers().map(lambda n: {"value": n}),
        }
        for name, kwargs in shapes.items():
            convert.override(task_id=f"{name}_expanded").expand_kwargs(kwargs)
            convert.override(task_id=f"{name}_iterated").iterate_kwargs(kwargs)
        operator_shapes: dict[str, Any] = {
            "op_literal": [{"value": 1}, {"value": 2}],
            "op_map": numbers.override(task_id="op_numbers")().map(lambda n: {"value": n}),
        }
        for name, kwargs in operator_shapes.items():
            Echo.partial(task_id=f"{name}_expanded").expand_kwargs(kwargs)
            Echo.partial(task_id=f"{name}_iterated").iterate_kwargs(kwargs)

    dag_run = run_dag(dag)
    for name in [*shapes, *operator_shapes]:
        assert xcom(dag_run, f"{name}_iterated") == mapped_xcoms(dag_run, f"{name}_expanded"), name
    assert xcom(dag_run, "elements_iterated") == ["5km", "6mm", "7km"]


# -- 11. downstream use of the result ----------------------------------------------------------


def test_a_downstream_task_sees_the_same_length_items_and_order() -> None:
    with make_dag("parity_downstream") as dag:

        @task
        def double(x: int) -> int:
            return x * 2

        @task
        def summarize(values: Any) -> list[Any]:
            return [len(values), values[0], values[len(values) - 1], list(values), 4 in values]

        @task
        def add(x: int, y: int) -> int:
            return x + y

        expanded = double.override(task_id="double_expanded").expand(x=[1, 2, 3])
        iterated = double.override(task_id="double_iterated").iterate(x=[1, 2, 3])
        summarize.override(task_id="summary_expanded")(expanded)
        summarize.override(task_id="summary_iterated")(iterated)
        # chained: each feeds the other form, and a cross product with a literal
        add.override(task_id="expand_of_iterated").expand(x=iterated, y=[10, 20])
        add.override(task_id="iterate_of_expanded").iterate(x=expanded, y=[10, 20])

    dag_run = run_dag(dag)
    summary = [3, 2, 6, [2, 4, 6], True]
    assert xcom(dag_run, "summary_iterated") == xcom(dag_run, "summary_expanded") == summary
    assert xcom(dag_run, "iterate_of_expanded") == mapped_xcoms(dag_run, "expand_of_iterated")


# -- 12. task ids and parse-time errors --------------------------------------------------------


def test_task_ids_are_made_unique_as_expand_makes_them() -> None:
    @task
    def show(x: int) -> int:
        return x

    ids = {}
    for method in ("expand", "iterate"):
        with make_dag(f"parity_ids_{method}") as dag:
            for _ in range(3):
                getattr(show, method)(x=[1])
            with TaskGroup("tg"):
                getattr(show, method)(x=[1])
                getattr(show.override(task_id="named"), method)(x=[1])
        ids[method] = sorted(dag.task_ids)
    assert ids["iterate"] == ids["expand"] == ["show", "show__1", "show__2", "tg.named", "tg.show"]


def test_a_repeated_operator_task_id_is_refused_as_expand_refuses_it() -> None:
    errors = []
    for method in ("expand", "iterate"):
        with make_dag(f"parity_duplicate_id_{method}"), pytest.raises(Exception) as caught:
            for _ in range(2):
                getattr(Echo.partial(task_id="echo"), method)(value=[1])
        errors.append(type(caught.value))
    assert errors[0] is errors[1]
    assert errors[0].__name__ == "DuplicateTaskIdFound"


@task
def _shown(x: int, y: int = 0) -> int:
    return x


PARSE_ERRORS: dict[str, tuple[Any, Any]] = {
    "no arguments": (lambda: _shown.expand(), lambda: _shown.iterate()),
    "unknown argument": (lambda: _shown.expand(z=[1]), lambda: _shown.iterate(z=[1])),
    "not a list": (lambda: _shown.expand(x=1), lambda: _shown.iterate(x=1)),
    "a string": (lambda: _shown.expand(x="ab"), lambda: _shown.iterate(x="ab")),
    "a context variable": (lambda: _shown.expand(x=[1], ds=["a"]), lambda: _shown.iterate(x=[1], ds=["a"])),
    "kwargs not a list": (lambda: _shown.expand_kwargs({"x": 1}), lambda: _shown.iterate_kwargs({"x": 1})),
    "kwargs element": (lambda: _shown.expand_kwargs([1]), lambda: _shown.iterate_kwargs([1])),
    "operator without arguments": (
        lambda: Echo.partial(task_id="e").expand(),
        lambda: Echo.partial(task_id="i").iterate(),
    ),
    "operator unknown argument": (
        lambda: Echo.partial(task_id="e").expand(nope=[1]),
        lambda: Echo.partial(task_id="i").iterate(nope=[1]),
    ),
    "operator not a list": (
        lambda: Echo.partial(task_id="e").expand(value=1),
        lambda: Echo.partial(task_id="i").iterate(value=1),
    ),
    "operator argument in partial": (
        lambda: Echo.partial(task_id="e", value=1).expand(value=[2]),
        lambda: Echo.partial(task_id="i", value=1).iterate(value=[2]),
    ),
    "operator kwargs not a list": (
        lambda: Echo.partial(task_id="e").expand_kwargs({"value": 1}),
        lambda: Echo.partial(task_id="i").iterate_kwargs({"value": 1}),
    ),
}


@pytest.mark.filterwarnings("ignore:Task .* was never mapped")
@pytest.mark.parametrize("mistake", list(PARSE_ERRORS))
def test_a_mistake_expand_refuses_at_parse_time_is_refused_with_the_same_exception_type(mistake: str) -> None:
    expand, iterate = PARSE_ERRORS[mistake]
    with make_dag("parity_parse_errors"):
        with pytest.raises((TypeError, ValueError)) as expanded:
            expand()
        with pytest.raises(type(expanded.value)) as iterated:
            iterate()
    assert isinstance(iterated.value, IterateUsageError)


# -- 13. the documented differences ------------------------------------------------------------


def test_documented_differences_empty_input_none_results_and_skips() -> None:
    with make_dag("parity_differences") as dag:

        @task
        def nothing() -> list[int]:
            return []

        @task
        def maybe(x: int) -> int | None:
            if x == 2:
                return None
            return x

        @task
        def skip_two(x: int) -> int:
            if x == 2:
                raise AirflowSkipException("not this one")
            return x

        @task(trigger_rule="all_done")
        def collect(values: Any) -> list[Any]:
            return list(values)

        for form in ("expanded", "iterated"):
            method = "expand" if form == "expanded" else "iterate"
            empty = getattr(maybe.override(task_id=f"empty_{form}"), method)(x=nothing())
            collect.override(task_id=f"after_empty_{form}")(empty)
            nones = getattr(maybe.override(task_id=f"none_{form}"), method)(x=[1, 2, 3])
            collect.override(task_id=f"after_none_{form}")(nones)
            getattr(skip_two.override(task_id=f"skip_{form}"), method)(x=[1, 2, 3])

    dag_run = run_dag(dag)
    by_ti = states(dag_run)
    # an empty input: expand skips the task; iterate succeeds with an empty list
    assert by_ti["empty_expanded", -1] == "skipped"
    assert by_ti["empty_iterated", -1] == "success"
    assert xcom(dag_run, "empty_iterated") == []
    assert xcom(dag_run, "after_empty_iterated") == []
    # a None result keeps its slot in the list; expand pushes nothing for it, so it has no slot
    assert xcom(dag_run, "none_iterated") == [1, None, 3]
    assert xcom(dag_run, "after_none_iterated") == [1, None, 3]
    assert xcom(dag_run, "after_none_expanded") == [1, 3]
    # a skipping item: expand skips that instance; iterate skips the one task instance
    assert [by_ti["skip_expanded", i] for i in range(3)] == ["success", "skipped", "success"]
    assert by_ti["skip_iterated", -1] == "skipped"
