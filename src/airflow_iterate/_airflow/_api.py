"""``iterate()`` and ``iterate_kwargs()``: parse-time checks, then one IterateOperator in the DAG."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator, XComArg
from typing_extensions import Unpack

from .._core import IterateUsageError, short_repr
from ._classic import _ClassicIterateOperator
from ._compat import (
    OperatorPartial,
    TaskDecorator,
    get_unique_task_id,
    is_python_task,
    validate_mapping_kwargs,
)
from ._inputs import IterateInput, KwargsInput, ProductInput
from ._item_context import ITERATE_INDEX_KEY
from ._labels import check_label_fields
from ._operator import _PythonIterateOperator
from ._options import OPTION_NAMES, IterateOptions, IterateSettings
from ._scaleout import build_chunked

# PythonOperator arguments a @task may carry that have no per-item meaning in iterate()
# (multiple_outputs is the decorator's own attribute, read from it).
_IGNORED_PYTHON_ARGS = frozenset({"show_return_value_in_logs", "multiple_outputs"})
_REFUSED_PYTHON_ARGS = {
    "templates_dict": "pass the values as arguments with .partial(...) instead",
    "templates_exts": "pass the values as arguments with .partial(...) instead",
    "op_args": "pass arguments by name with .partial(...) instead",
}

_BASE_OPERATOR_ARGS = frozenset(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}


def iterate(task: Any, /, **arguments: Any) -> XComArg:
    """Run ``task`` once per item inside ONE task instance; the same argument forms as ``.expand()``.

    Each keyword argument that is not an option (:class:`IterateOptions`: ``concurrency``,
    ``item_retries``, ``max_failures``, ``chunk_size``, ...) is a list, tuple, dict (iterated as
    ``(key, value)`` pairs) or an XComArg resolving to one; several arguments iterate over their
    cross product. Arguments fixed for every item come from ``task.partial(...)``. Returns an
    XComArg whose value is the list of per-item results in input order.

    Within ``max_failures`` the task succeeds, failed items are ``None`` in the result and are
    listed in the ``iterate_failures`` XCom; past it the task fails once in-flight items finish.
    ``chunk_size`` / ``chunks`` split the input over mapped task instances that can run on
    different workers (see "Scaling out over workers" in the README).
    """
    if isinstance(task, OperatorPartial):
        task._expand_called = True  # used here, even if iterate() then refuses its arguments
        target = task.operator_class.__name__
        own_names = _operator_parameters(task.operator_class)
        fixed: Mapping[str, Any] = task.kwargs
    else:
        decorated = _require_task(task, "iterate")
        target = f"{decorated.function.__name__}()"
        own_names = set(decorated.function_signature.parameters)
        fixed = decorated.kwargs.get("op_kwargs", {})
    options = {name: arguments.pop(name) for name in OPTION_NAMES.intersection(arguments)}
    shared = sorted(own_names.intersection(options))
    try:
        settings = IterateSettings.from_options(options)
    except IterateUsageError as exc:
        if shared:  # the author may have meant the function's own parameter: say which is which
            raise IterateUsageError(f"{exc}. {_option_rule(target, shared)}") from exc
        raise
    if not arguments:
        raise IterateUsageError("iterate() needs at least one keyword argument to iterate over")
    for name, value in arguments.items():
        _require_iterable_argument("iterate", name, value)
    check_label_fields(settings.item_label, set(arguments))
    if isinstance(task, OperatorPartial):
        _validate_operator_names(task, "iterate", arguments)
        _require_shared_values(task, target, fixed, arguments, options)
        return _build_classic(task, ProductInput(arguments), settings)
    _validate_names(decorated, "iterate", arguments)
    _require_shared_values(decorated, target, fixed, arguments, options)
    return _build(decorated, ProductInput(arguments), settings)


def iterate_kwargs(task: Any, kwargs: Any, /, **options: Unpack[IterateOptions]) -> XComArg:
    """Like ``.expand_kwargs()``: ``kwargs`` is a list of dicts (or an XComArg of one), one per item.

    Takes the same keyword-only options as :func:`iterate`.
    """
    settings = IterateSettings.from_options(options, function="iterate_kwargs")
    decorated = None if isinstance(task, OperatorPartial) else _require_task(task, "iterate_kwargs")
    if decorated is None:
        task._expand_called = True
    if isinstance(kwargs, XComArg):
        pass
    elif isinstance(kwargs, Mapping) or not isinstance(kwargs, Sequence) or isinstance(kwargs, str):
        raise IterateUsageError(
            f"iterate_kwargs() expects a list of dicts or an XComArg, got {type(kwargs).__name__} "
            f"{short_repr(kwargs)}"
        )
    else:
        for index, element in enumerate(kwargs):
            if isinstance(element, XComArg):
                continue
            if not isinstance(element, Mapping):
                raise IterateUsageError(
                    f"iterate_kwargs() element {index} is {type(element).__name__} {short_repr(element)}; "
                    "expected a dict of keyword arguments (or an XComArg resolving to one)"
                )
            if decorated is None:
                _validate_operator_names(task, "iterate_kwargs", dict(element))
            else:
                _validate_names(decorated, "iterate_kwargs", dict(element))
    if decorated is None:
        return _build_classic(task, KwargsInput(kwargs), settings)
    return _build(decorated, KwargsInput(kwargs), settings)


# -- checks -----------------------------------------------------------------------------------


def _require_task(task: Any, func: str) -> TaskDecorator[Any, Any, Any]:
    if not isinstance(task, TaskDecorator):
        raise IterateUsageError(
            f"{func}() takes a @task-decorated function or an operator's .partial(...), got "
            f"{type(task).__name__} {short_repr(task)}"
        )
    if not is_python_task(task):
        kind = getattr(task.operator_class, "custom_operator_name", task.operator_class.__name__)
        raise IterateUsageError(
            f"{func}() runs plain @task functions in the worker's Python process; {kind} tasks are not "
            "supported"
        )
    return task


def _did_you_mean(unknown: set[str]) -> str:
    """A hint for a misspelled option, which iterate() took for an argument to iterate over."""
    hints = [
        f"{name!r}: did you mean the option {match[0]!r}?"
        for name in sorted(unknown)
        if (match := difflib.get_close_matches(name, OPTION_NAMES, n=1, cutoff=0.75))
    ]
    return f" ({'; '.join(hints)})" if hints else ""


def _option_rule(target: str, names: Sequence[str]) -> str:
    """How a name shared by an option and the task's own parameter is read (the README's rule)."""
    listed = ", ".join(repr(name) for name in names)
    first = names[0]
    return (
        f"In .iterate(), {listed} {'is an option' if len(names) == 1 else 'are options'} of the run; "
        f"{target}'s own parameter of that name is set with .partial({first}=...) for every item, "
        f"or per item with .iterate_kwargs([{{{first!r}: ...}}, ...])"
    )


def _require_shared_values(
    task: Any,
    target: str,
    fixed: Mapping[str, Any],
    arguments: Mapping[str, Any],
    options: Mapping[str, Any],
) -> None:
    """Refuse a required parameter named like an option when nothing gives it a value.

    ``.iterate(concurrency=...)`` is always the option, so the task's own ``concurrency`` must
    come from ``.partial()``; without it every item would fail the same way when it runs.
    """
    missing = sorted(
        name
        for name in _required_parameters(task).intersection(OPTION_NAMES)
        if name not in fixed and name not in arguments
    )
    if missing:
        given = " (given to .iterate() as the option)" if options.keys() & set(missing) else ""
        raise IterateUsageError(
            f"{target} requires {', '.join(map(repr, missing))}, which nothing gives it{given}. "
            + _option_rule(target, missing)
        )


def _required_parameters(task: Any) -> set[str]:
    if isinstance(task, OperatorPartial):
        signatures = [
            inspect.signature(klass.__dict__["__init__"])
            for klass in task.operator_class.mro()
            if "__init__" in klass.__dict__
        ]
    else:
        signatures = [task.function_signature]
    return {
        name
        for signature in signatures
        for name, parameter in signature.parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


def _validate_names(task: TaskDecorator[Any, Any, Any], func: str, kwargs: dict[str, Any]) -> None:
    if ITERATE_INDEX_KEY in kwargs:
        raise IterateUsageError(f"cannot call {func}() on {ITERATE_INDEX_KEY!r}: it is set per item")
    try:
        task._validate_arg_names(func, kwargs)  # type: ignore[arg-type]  # same rules as expand()
    except (TypeError, ValueError) as exc:
        known = set(task.function_signature.parameters)
        raise IterateUsageError(str(exc) + _did_you_mean(set(kwargs) - known)) from exc
    _refuse_repeated(func, task.kwargs.get("op_kwargs", {}), kwargs)


def _operator_parameters(operator_class: type) -> set[str]:
    names: set[str] = set()
    for klass in operator_class.mro():
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names - {"self", "args", "kwargs"}


def _validate_operator_names(partial: OperatorPartial, func: str, kwargs: dict[str, Any]) -> None:
    if ITERATE_INDEX_KEY in kwargs:
        raise IterateUsageError(f"cannot call {func}() on {ITERATE_INDEX_KEY!r}: it is set per item")
    try:
        validate_mapping_kwargs(partial.operator_class, "partial", kwargs)  # names only, as expand does
    except (TypeError, ValueError) as exc:
        known = _operator_parameters(partial.operator_class) | _BASE_OPERATOR_ARGS
        message = str(exc).replace(".partial()", f".{func}()", 1)
        raise IterateUsageError(message + _did_you_mean(set(kwargs) - known)) from exc
    _refuse_repeated(func, partial.kwargs, kwargs)
    if partial.kwargs.get("deferrable") or partial.kwargs.get("start_from_trigger"):
        raise IterateUsageError(
            f"{partial.operator_class.__name__} is deferrable here, and deferring hands work to the "
            "triggerer; iterate() runs every item on the worker, concurrently: pass deferrable=False "
            "in .partial(...)"
        )


def _refuse_repeated(func: str, fixed: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
    """Refuse an argument both fixed by ``.partial()`` and given per item, saying how to port.

    ``.expand()`` refuses it for an operator, but lets a @task item's value win silently, and
    ``.expand_kwargs()`` fails the task instances when they run; iterate refuses all at parse time.
    """
    repeated = sorted(set(fixed).intersection(kwargs))
    if not repeated:
        return
    names = ", ".join(repr(name) for name in repeated)
    if func == "iterate_kwargs":
        fix = f"remove {names} from .partial() or from the dicts"
    else:
        fix = f"remove {names} from .partial(), since every item gives its own value"
    raise IterateUsageError(f"{func}() got {names}, already given to .partial(): {fix}")


def _require_iterable_argument(func: str, name: str, value: Any) -> None:
    if isinstance(value, XComArg):
        return
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, (Sequence, Mapping)):
        raise IterateUsageError(
            f"{func}() got {type(value).__name__} {short_repr(value)} for keyword argument {name!r}; "
            "expected a list, tuple or dict of items, or an XComArg (an upstream task's output)"
            + _did_you_mean({name})
        )


# -- building the task ------------------------------------------------------------------------


def _build(
    task: TaskDecorator[Any, Any, Any], iterate_input: IterateInput, settings: IterateSettings
) -> XComArg:
    task_kwargs = dict(task.kwargs)
    static_kwargs = dict(task_kwargs.pop("op_kwargs", None) or {})
    operator_kwargs: dict[str, Any] = {}
    for key, value in task_kwargs.items():
        if key in _IGNORED_PYTHON_ARGS:
            continue
        if key in _REFUSED_PYTHON_ARGS:
            if value:
                raise IterateUsageError(f"iterate() does not support {key}=...: {_REFUSED_PYTHON_ARGS[key]}")
            continue
        if key not in _BASE_OPERATOR_ARGS:
            raise IterateUsageError(f"iterate() got an operator argument it does not know: {key!r}")
        operator_kwargs[key] = value
    operator_kwargs["task_id"] = get_unique_task_id(
        operator_kwargs["task_id"], operator_kwargs.get("dag"), operator_kwargs.get("task_group")
    )
    arguments: dict[str, Any] = dict(
        python_callable=task.function,
        iterate_input=iterate_input,
        static_kwargs=static_kwargs,
        item_multiple_outputs=bool(task.multiple_outputs),
        settings=settings,
        operator_name="@task.iterate",
        **operator_kwargs,
    )
    if settings.chunked:
        return build_chunked(_PythonIterateOperator, arguments, doc_md=task.function.__doc__)
    operator = _PythonIterateOperator(**arguments)
    if task.function.__doc__ and not (operator.doc_md or operator.doc):
        operator.doc_md = task.function.__doc__
    return XComArg(operator)


def _build_classic(
    partial: OperatorPartial, iterate_input: IterateInput, settings: IterateSettings
) -> XComArg:
    operator_kwargs = dict(partial.kwargs)
    task_kwargs = {
        key: operator_kwargs.pop(key)
        for key in ("task_id", "dag", "task_group", "start_date", "end_date")
        if key in operator_kwargs
    }
    task_kwargs["task_id"] = _label_in_group(task_kwargs["task_id"], task_kwargs.get("task_group"))
    task_kwargs.update({k: v for k, v in operator_kwargs.items() if k in _BASE_OPERATOR_ARGS})
    item_kwargs = {k: v for k, v in operator_kwargs.items() if k not in _BASE_OPERATOR_ARGS}
    arguments: dict[str, Any] = dict(
        item_operator_class=partial.operator_class,
        operator_kwargs=item_kwargs,
        partial_arguments=sorted(operator_kwargs),
        iterate_input=iterate_input,
        settings=settings,
        operator_name=f"{partial.operator_class.__name__}.iterate",
        params=partial.params,
        **task_kwargs,
    )
    if settings.chunked:
        return build_chunked(_ClassicIterateOperator, arguments)
    operator = _ClassicIterateOperator(**arguments)
    return XComArg(operator)


def _label_in_group(task_id: str, task_group: Any) -> str:
    """The task id as written in the DAG: ``.partial()`` already prefixed it with its group's id.

    The operator built from it adds the prefix itself (a mapped operator, which takes the id as
    it is, does not), and a chunked task names its task group with it.
    """
    prefix = task_group.child_id("") if task_group is not None else ""
    return task_id[len(prefix) :] if prefix and task_id.startswith(prefix) else task_id


def install() -> None:
    """Give every @task function ``.iterate()`` and ``.iterate_kwargs()`` methods (idempotent)."""

    def iterate_method(self: Any, /, *positional: Any, **kwargs: Any) -> XComArg:
        if positional:
            raise IterateUsageError(
                f"iterate() takes keyword arguments only, got {len(positional)} positional: name the "
                "parameter each list is for, as in .iterate(path=[...]); for a list of dicts, one per "
                "item, use .iterate_kwargs([...])"
            )
        return iterate(self, **kwargs)

    def iterate_kwargs_method(self: Any, /, *positional: Any, **options: Any) -> XComArg:
        if len(positional) != 1:
            raise IterateUsageError(
                f"iterate_kwargs() takes one positional argument, the list of dicts (one per item) or an "
                f"XComArg resolving to one, got {len(positional)}; options are keyword arguments"
            )
        return iterate_kwargs(self, positional[0], **options)

    for method, function in ((iterate_method, iterate), (iterate_kwargs_method, iterate_kwargs)):
        method.__doc__ = function.__doc__
        method.__name__ = method.__qualname__ = function.__name__  # what tracebacks show
    for cls in (TaskDecorator, OperatorPartial):
        cls.iterate = iterate_method  # type: ignore[attr-defined]
        cls.iterate_kwargs = iterate_kwargs_method  # type: ignore[attr-defined]
