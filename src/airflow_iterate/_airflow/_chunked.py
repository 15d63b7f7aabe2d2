"""``iterate(..., chunk_size=N)`` / ``chunks=N``: one input, split over mapped task instances.

One iterated task instance runs on one worker. To spread a large input over several workers the
DAG gets, instead of that one task, a TaskGroup named after the task id holding three tasks:

``<task_id>.plan``
    runs on a worker and reads only the input's length (one count query for the output of a
    mapped task, one XCom value for a list), then returns the chunk descriptors
    ``[{"start": 0, "stop": 5000}, {"start": 5000, "stop": 10000}, ...]``.
``<task_id>.chunks``
    ONE mapped task, expanded over the descriptors. Each task instance resolves the input, takes
    its slice only (a slice of a lazy XCom sequence fetches just that slice) and iterates over it
    exactly like an unchunked iterate: concurrency, item retries, failure tolerance, progress, and
    a checkpoint of its own (the task state store is per task instance, so per chunk). Items see
    their GLOBAL position as ``iterate_index``.
``<task_id>.gather``
    concatenates the chunks' results in map-index order, i.e. input order, and sums their
    summaries. Its output is what ``.iterate()`` returns, so downstream code does not change.

Several iterables (the cross product) are chunked over the flattened product index: a chunk reads
the rows of the first argument it touches and the other arguments whole, as an unchunked run does.
Nothing here materialises the input in the scheduler: it only ever sees the descriptors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, TaskGroup, XComArg
from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext
from airflow.sdk.definitions.xcom_arg import PlainXComArg

from .._core import (
    ItemFailure,
    ItemsFailedError,
    IterateInputError,
    IterateUsageError,
    check_iterable,
    cross_product,
    short_repr,
)
from ._classic import _ClassicIterateOperator
from ._item_context import ItemXComs
from ._operator import InputKind, IterateOperator, _PythonIterateOperator
from ._reporting import FAILURES_KEY, SUMMARY_KEY
from ._streaming import PAGE_SIZE, _prefetched, is_lazy_xcom_sequence, stream

#: the keys of the XComs a chunk's items pushed, for the gather to combine
ITEM_XCOM_KEYS_KEY = "iterate_item_xcom_keys"

PLAN_TASK_ID = "plan"
CHUNKS_TASK_ID = "chunks"
GATHER_TASK_ID = "gather"

#: task arguments the planning and gathering tasks share with the chunks: where and how a task
#: instance of this DAG may run, not how items run (pool, timeouts and concurrency caps are per
#: chunk, and the remote server never sees plan or gather)
_SHARED_ARGS = (
    "owner",
    "queue",
    "executor",
    "executor_config",
    "run_as_user",
    "priority_weight",
    "weight_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "start_date",
    "end_date",
    "email",
    "email_on_retry",
    "email_on_failure",
    "on_failure_callback",
    "on_retry_callback",
)
#: the plan waits for the same upstream tasks as the chunks (the input's), so under the same rule
_PLAN_ARGS = ("trigger_rule",)
#: "the task finished" means the last task of the group: one asset event and one success
#: callback per run, not one per chunk
_GATHER_ONLY_ARGS = ("outlets", "on_success_callback")

#: counters of the chunks' ``iterate_summary`` XComs that add up to the whole input's
_SUMMED_STATISTICS = ("total", "started", "succeeded", "failed", "resumed", "retried", "done")


# -- planning ---------------------------------------------------------------------------------


def chunk_bounds(total: int, *, chunk_size: int | None, chunks: int | None) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(total)`` in order; never an empty chunk but one.

    An empty input still gets one (empty) chunk: a mapped task over no descriptors would be
    skipped, and with it everything downstream, where an unchunked iterate succeeds with ``[]``.
    """
    if total <= 0:
        return [(0, 0)]
    if chunk_size is not None:
        return [(start, min(start + chunk_size, total)) for start in range(0, total, chunk_size)]
    assert chunks is not None
    count = min(chunks, total)
    # Sizes differ by at most one item, so no chunk is left with a small remainder.
    return [(i * total // count, (i + 1) * total // count) for i in range(count)]


def input_length(kind: InputKind, name: str, value: Any) -> int:
    """The number of items ``value`` holds, without reading them; clear errors for what is not a list."""
    if kind == "kwargs" and isinstance(value, Mapping):
        raise IterateInputError(
            f"iterate_kwargs() argument {name!r} is a dict {short_repr(value)}; expected a list of dicts, "
            "one per item (wrap a single dict in a list)"
        )
    check_iterable(name, value)
    try:
        return len(value)  # type: ignore[arg-type]
    except TypeError:
        raise IterateInputError(
            f"iterate() argument {name!r} is {type(value).__name__} {short_repr(value)}, whose length is "
            "unknown; chunk_size/chunks need a list, tuple, dict or an upstream task's output"
        ) from None


def _max_map_length() -> int:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf  # type: ignore[no-redef]
    return int(conf.getint("core", "max_map_length", fallback=1024))


class IteratePlanOperator(BaseOperator):
    """Splits an iterate input into chunk descriptors, reading its length only."""

    template_fields: ClassVar[tuple[str, ...]] = ("pending_inputs",)
    custom_operator_name = "iterate: plan chunks"
    ui_color = "#eaf4fb"

    def __init__(
        self,
        *,
        input_kind: InputKind,
        known_lengths: Mapping[str, int],
        pending_inputs: Mapping[str, Any],
        chunk_size: int | None,
        chunks: int | None,
        max_items: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_kind = input_kind
        self.known_lengths = dict(known_lengths)
        # Only the XComArgs are templated: resolving one yields a lazy sequence (the output of a
        # mapped task) or the one XCom value, and only its len() is taken.
        self.pending_inputs = dict(pending_inputs)
        self.chunk_size = chunk_size
        self.chunks = chunks
        self.max_items = max_items

    def execute(self, context: Any) -> list[dict[str, int]]:
        lengths = dict(self.known_lengths)
        for name, value in self.pending_inputs.items():
            lengths[name] = input_length(self.input_kind, name, value)
        total = math.prod(lengths.values())
        if self.max_items is not None and total > self.max_items:
            raise IterateInputError(
                f"the input has {total:,} items, over max_items={self.max_items:,}; raise max_items if "
                "this is intended, or split the input into several runs"
            )
        bounds = chunk_bounds(total, chunk_size=self.chunk_size, chunks=self.chunks)
        limit = _max_map_length()
        if len(bounds) > limit:
            raise IterateInputError(
                f"chunk_size={self.chunk_size} splits {total:,} items into {len(bounds):,} chunks, over "
                f"[core] max_map_length={limit:,} (the most task instances one mapped task may have); "
                "raise chunk_size"
            )
        sizes = sorted({stop - start for start, stop in bounds})
        self.log.info(
            "Iterate input: %s item(s) (%s) in %d chunk(s) of %s item(s)",
            f"{total:,}",
            ", ".join(f"{name}: {length:,}" for name, length in lengths.items()),
            len(bounds),
            " or ".join(f"{size:,}" for size in sizes),
        )
        return [{"start": start, "stop": stop} for start, stop in bounds]


# -- one chunk --------------------------------------------------------------------------------


class _Window:
    """Items ``start..stop`` of a lazy XCom sequence, fetched one page (one request) at a time."""

    def __init__(self, sequence: Sequence[Any], start: int, stop: int) -> None:
        self._sequence = sequence
        self._start = start
        self._stop = stop

    def __len__(self) -> int:
        return self._stop - self._start

    def _pages(self) -> Iterator[list[Any]]:
        for start in range(self._start, self._stop, PAGE_SIZE):
            page = list(self._sequence[start : min(start + PAGE_SIZE, self._stop)])
            if not page:
                return
            yield page

    def __iter__(self) -> Iterator[Any]:
        return _prefetched(self._pages())


class _Mapped:
    """The window of an ``XComArg.map()`` result: the window of its input, then the functions."""

    def __init__(self, values: Iterable[Any], callables: Sequence[Any]) -> None:
        self._values = values
        self._callables = callables

    def __iter__(self) -> Iterator[Any]:
        for value in self._values:
            for function in self._callables:
                value = function(value)
            yield value


class _Zipped:
    def __init__(self, parts: list[Iterable[Any]], fillvalue: Any, longest: bool) -> None:
        self._parts = parts
        self._fillvalue = fillvalue
        self._longest = longest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if self._longest:
            return itertools.zip_longest(*self._parts, fillvalue=self._fillvalue)
        return zip(*self._parts, strict=False)  # shortest, as the Task SDK zips


class _Chained:
    def __init__(self, parts: list[Iterable[Any]]) -> None:
        self._parts = parts

    def __iter__(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(self._parts)


def _xcom_result_parts(value: Any) -> tuple[str, list[Any]] | None:
    """``("map" | "zip" | "concat", parts)`` for a resolved ``.map()``/``.zip()``/``.concat()`` XComArg."""
    try:
        from airflow.sdk.definitions.xcom_arg import _ConcatResult, _MapResult, _ZipResult
    except ImportError:  # pragma: no cover - windowed element by element instead
        return None
    if isinstance(value, _MapResult):
        return "map", [value.value]
    if isinstance(value, _ZipResult):
        return "zip", list(value.values)
    if isinstance(value, _ConcatResult):
        return "concat", list(value.values)
    return None


def _window_xcom_result(value: Any, start: int, stop: int) -> Iterable[Any] | None:
    """The window of a resolved ``.map()``/``.zip()``/``.concat()`` result, through its parts.

    Indexing one reads its parts one element (one request) at a time. A dict part is left to that
    (None is returned): there its semantics differ from iterating over the dict.
    """
    found = _xcom_result_parts(value)
    if found is None or any(isinstance(part, Mapping) for part in found[1]):
        return None
    kind, parts = found
    if kind == "map":
        return _Mapped(window(parts[0], start, stop), value.callables)
    if kind == "zip":
        windows = [window(part, start, min(stop, len(part))) for part in parts]
        # An unset fillvalue is the Task SDK's ArgNotSet marker: zip to the shortest, as it does.
        longest = type(value.fillvalue).__name__ != "ArgNotSet"
        return _Zipped(windows, value.fillvalue, longest)
    pieces: list[Iterable[Any]] = []
    offset = 0
    for part in parts:
        length = len(part)
        lo, hi = max(start - offset, 0), min(stop - offset, length)
        if lo < hi:
            pieces.append(window(part, lo, hi))
        offset += length
    return _Chained(pieces)


def window(value: Any, start: int, stop: int) -> Iterable[Any]:
    """Items ``start..stop`` of ``value`` (iterable more than once), reading no more of it than needed.

    A dict yields ``(key, value)`` pairs, as iterate() (and ``.expand()``) iterate it.
    """
    if start >= stop:
        return []
    if isinstance(value, (list, tuple)):
        return value[start:stop]
    if isinstance(value, Mapping):
        return list(itertools.islice(value.items(), start, stop))
    if is_lazy_xcom_sequence(value):
        return _Window(value, start, min(stop, len(value)))
    windowed = _window_xcom_result(value, start, stop)
    if windowed is not None:
        return windowed
    if isinstance(value, Sequence):
        return [value[i] for i in range(start, min(stop, len(value)))]
    return list(itertools.islice(value, start, stop))


class ChunkItems:
    """The items of one chunk as keyword-argument dicts; sized, and iterable more than once."""

    def __init__(self, value: Any, kind: InputKind, start: int, stop: int) -> None:
        self._value = value
        self._kind = kind
        self._start = start
        self._stop = stop
        if kind == "kwargs":
            total = input_length(kind, "kwargs", value)
        else:
            total = math.prod(input_length(kind, name, v) for name, v in value.items())
        if stop > total:
            raise IterateInputError(
                f"this chunk holds items {start:,} to {stop - 1:,}, but the input now has {total:,} items: "
                "it changed after the plan task ran; clear the task group to plan again"
            )

    def __len__(self) -> int:
        return self._stop - self._start

    def __iter__(self) -> Iterator[Any]:
        if self._kind == "kwargs":
            return iter(window(self._value, self._start, self._stop))
        names = list(self._value)
        first, rest = self._value[names[0]], [self._value[name] for name in names[1:]]
        # The product is row-major: each item of the first argument is one row of `per_row` items.
        per_row = math.prod(len(value) for value in rest)
        if per_row == 0 or self._start >= self._stop:
            return iter(())
        first_row = self._start // per_row
        end_row = -(-self._stop // per_row)
        named: dict[str, Iterable[Any]] = {names[0]: window(first, first_row, end_row)}
        named.update((name, stream(value)) for name, value in zip(names[1:], rest, strict=True))
        skip = self._start - first_row * per_row
        return itertools.islice(cross_product(named), skip, skip + len(self))


class _ShiftedXComs(ItemXComs):
    """Item XComs keyed by the position in the chunk, while items know their global position."""

    def __init__(self, target: ItemXComs, offset: int) -> None:
        super().__init__()
        self._target = target
        self._offset = offset

    def push(self, index: int, key: str, value: Any) -> None:
        self._target.push(index - self._offset, key, value)


class _GlobalIndexInvoker:
    """Calls the item with its position in the whole input rather than in the chunk."""

    def __init__(self, inner: Any, offset: int) -> None:
        self._inner = inner
        self._offset = offset
        self.is_async: bool = inner.is_async

    def __call__(self, index: int, item_kwargs: Mapping[str, Any]) -> Any:
        return self._inner(index + self._offset, item_kwargs)


class _GlobalFailures(list[ItemFailure]):
    """The runner's failure list, recording the global index of each failed item."""

    def __init__(self, offset: int) -> None:
        super().__init__()
        self._offset = offset

    def append(self, failure: ItemFailure) -> None:
        super().append(ItemFailure(failure.index + self._offset, failure.input_repr, failure.exception))


def _chunk_bounds(chunk: Any) -> tuple[int, int]:
    if isinstance(chunk, Mapping):
        start, stop = chunk.get("start"), chunk.get("stop")
        if isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop:
            return start, stop
    raise IterateInputError(
        f"expected a chunk descriptor like {{'start': 0, 'stop': 100}} from the plan task, "
        f"got {short_repr(chunk)}"
    )


class _ChunkOperator(IterateOperator):
    """Runs one chunk (``start..stop`` of the input) of a chunked iterate; mapped over descriptors."""

    def __init__(self, *, chunk: Mapping[str, int], input_kind: InputKind, **kwargs: Any) -> None:
        # The engine sees the chunk as a list of keyword-argument dicts, whatever the input form.
        super().__init__(input_kind="kwargs", **kwargs)
        self.chunk = chunk
        self.source_kind = input_kind

    @property
    def _runner(self) -> Any:
        return self.__dict__.get("_chunk_runner")

    @_runner.setter
    def _runner(self, runner: Any) -> None:
        # execute() hands the runner over here before it starts: from then on failures name the
        # item's index in the whole input, in the error, the log and the iterate_failures XCom.
        runner.failures = _GlobalFailures(_chunk_bounds(self.chunk)[0])
        self.__dict__["_chunk_runner"] = runner

    def _resolved_input(self, context: Any) -> Any:
        start, stop = _chunk_bounds(self.chunk)
        return ChunkItems(super()._resolved_input(context), self.source_kind, start, stop)

    def _make_invoker(self, context: Any, sink: ItemXComs) -> Any:
        start, _ = _chunk_bounds(self.chunk)
        return _GlobalIndexInvoker(super()._make_invoker(context, _ShiftedXComs(sink, start)), start)

    def _publish_item_xcoms(self, ti: Any, sink: ItemXComs, count: int) -> list[str]:
        pushed = super()._publish_item_xcoms(ti, sink, count)
        if pushed:
            ti.xcom_push(key=ITEM_XCOM_KEYS_KEY, value=pushed)
        return pushed

    def execute(self, context: Any) -> list[Any]:
        start, stop = _chunk_bounds(self.chunk)
        self.log.info(
            "Chunk %s: items %s to %s of the input (iterate_index is the position in the whole input)",
            context["ti"].map_index,
            f"{start:,}",
            f"{stop - 1:,}",
        )
        return super().execute(context)


class ChunkedPythonIterateOperator(_ChunkOperator, _PythonIterateOperator):
    custom_operator_name = "@task.iterate"


class ChunkedClassicIterateOperator(_ChunkOperator, _ClassicIterateOperator):
    custom_operator_name = "iterate"


# -- gathering --------------------------------------------------------------------------------


class RecordedItemError(Exception):
    """An item's exception as a chunk recorded it; the exception itself stayed in that process."""


class IterateGatherOperator(BaseOperator):
    """Concatenates the chunks' results in input order; checks failures against the whole input."""

    template_fields: ClassVar[tuple[str, ...]] = (
        "chunk_results",
        "chunk_summaries",
        "chunk_failures",
        "chunk_item_xcom_keys",
    )
    custom_operator_name = "iterate: gather chunks"
    ui_color = "#eaf4fb"

    def __init__(
        self,
        *,
        chunk_results: Any,
        chunk_summaries: Any,
        chunk_failures: Any,
        chunk_item_xcom_keys: Any,
        plan_task_id: str,
        chunks_task_id: str,
        max_failures: int | float | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.chunks_task_id = chunks_task_id
        self.chunk_item_xcom_keys = chunk_item_xcom_keys
        self.chunk_results = chunk_results
        self.chunk_summaries = chunk_summaries
        self.chunk_failures = chunk_failures
        self.max_failures = max_failures

    def execute(self, context: Any) -> list[Any]:
        ti = context["ti"]
        planned = ti.xcom_pull(task_ids=self.plan_task_id)
        parts = list(stream(self.chunk_results))
        _check_complete(parts, planned)
        results = [result for part in parts for result in part]
        chunks = len(parts)
        summary: dict[str, Any] = {"chunks": chunks, **dict.fromkeys(_SUMMED_STATISTICS, 0)}
        for chunk_summary in stream(self.chunk_summaries):
            for key in _SUMMED_STATISTICS:
                summary[key] += chunk_summary.get(key) or 0
        failures = [failure for part in stream(self.chunk_failures) for failure in part]
        ti.xcom_push(key=SUMMARY_KEY, value=summary)
        if failures:
            ti.xcom_push(key=FAILURES_KEY, value=failures)
        self._combine_item_xcoms(ti, list(planned or []))
        self.log.info(
            "Gathered %s result(s) from %d chunk(s): %s succeeded, %s resumed, %s failed",
            f"{len(results):,}",
            chunks,
            f"{summary['succeeded']:,}",
            f"{summary['resumed']:,}",
            f"{summary['failed']:,}",
        )
        self._check_failures(summary, failures, len(results))
        return results

    def _combine_item_xcoms(self, ti: Any, planned: list[dict[str, int]]) -> None:
        """One list per key over the whole input, as an unchunked run pushes it (None: not pushed)."""
        keys = sorted({key for part in stream(self.chunk_item_xcom_keys) for key in part or ()})
        for key in keys:
            values: list[Any] = []
            for map_index, chunk in enumerate(planned):
                size = chunk["stop"] - chunk["start"]
                part = ti.xcom_pull(task_ids=self.chunks_task_id, key=key, map_indexes=map_index)
                values.extend(part if isinstance(part, list) and len(part) == size else [None] * size)
            ti.xcom_push(key=key, value=values)
        if keys:
            self.log.info("XComs pushed by items, combined over the chunks in input order: %s", keys)

    def _check_failures(self, summary: Mapping[str, Any], failures: list[dict[str, Any]], total: int) -> None:
        # Each chunk tolerated max_failures on its own; the whole input must too.
        if self.max_failures is None:
            return
        if isinstance(self.max_failures, int):
            limit = self.max_failures
        else:
            limit = math.floor(self.max_failures * total)
        if summary["failed"] <= limit:
            return
        raise ItemsFailedError(
            [
                ItemFailure(f["index"], f["input"], RecordedItemError(f["error"]))
                for f in sorted(failures, key=lambda f: f["index"])
            ],
            completed=summary["succeeded"] + summary["resumed"],
            total=total,
        )


def _check_complete(parts: list[Any], planned: Any) -> None:
    """Every planned chunk returned one result per item; else the concatenation would misplace items."""
    planned = list(planned or [])
    sizes = [len(part) if isinstance(part, (list, tuple)) else None for part in parts]
    expected = [chunk["stop"] - chunk["start"] for chunk in planned]
    if sizes == expected:
        return
    raise IterateInputError(
        f"the chunks returned {len(parts)} result list(s) of sizes {short_repr(sizes)} where the plan has "
        f"{len(planned)} chunk(s) of sizes {short_repr(expected)}; a chunk task instance without its "
        "results (marked successful by hand?) cannot be gathered: clear it to run it again"
    )


# -- building the task group ------------------------------------------------------------------


class ChunkedOutput(PlainXComArg):
    """The gathered result; as a dependency its upstream end is the plan task, not the gather.

    ``start >> task.iterate(..., chunks=4)`` must hold back the whole group, so upstream
    relationships go to the first task, downstream ones (and the XCom) to the last.
    """

    #: set right after construction (an instance attribute: the base class is a slotted attrs class)
    plan: Any

    @property
    def roots(self) -> list[Any]:
        return [self.plan]

    def set_upstream(self, task_or_task_list: Any, edge_modifier: Any = None) -> None:
        self.plan.set_upstream(task_or_task_list, edge_modifier)


def _split_lengths(iterate_input: Any, input_kind: InputKind) -> tuple[dict[str, int], dict[str, Any]]:
    """Lengths known at parse time (literal lists), and the XComArgs whose length the plan reads."""
    named = {"kwargs": iterate_input} if input_kind == "kwargs" else dict(iterate_input)
    known: dict[str, int] = {}
    pending: dict[str, Any] = {}
    for name, value in named.items():
        if isinstance(value, XComArg):
            pending[name] = value
        else:
            known[name] = len(value)
    return known, pending


def build_chunked(
    operator_class: type[IterateOperator], arguments: dict[str, Any], *, doc_md: str | None = None
) -> XComArg:
    """The plan / chunks / gather TaskGroup for ``operator_class(**arguments)`` split into chunks."""
    arguments = dict(arguments)
    settings = arguments["settings"]
    group_id = arguments.pop("task_id")
    dag = arguments.pop("dag", None) or DagContext.get_current()
    if dag is None:
        raise IterateUsageError(
            "chunk_size/chunks turn the task into a task group, which needs a DAG: call .iterate() "
            "inside `with DAG(...)` or a @dag function"
        )
    parent = arguments.pop("task_group", None) or TaskGroupContext.get_current(dag)
    chunk_class = (
        ChunkedClassicIterateOperator
        if issubclass(operator_class, _ClassicIterateOperator)
        else ChunkedPythonIterateOperator
    )
    group = TaskGroup(
        group_id=group_id,
        parent_group=parent,
        dag=dag,
        add_suffix_on_collision=True,
        tooltip=f"{arguments['operator_name']} in chunks: plan, chunks (mapped), gather",
    )

    def shared(*extra: str) -> dict[str, Any]:
        return {key: arguments[key] for key in (*_SHARED_ARGS, *extra) if key in arguments}

    known, pending = _split_lengths(arguments["iterate_input"], arguments["input_kind"])
    plan = IteratePlanOperator(
        task_id=PLAN_TASK_ID,
        dag=dag,
        task_group=group,
        input_kind=arguments["input_kind"],
        known_lengths=known,
        pending_inputs=pending,
        chunk_size=settings.chunk_size,
        chunks=settings.chunks,
        max_items=settings.max_items,
        **shared(*_PLAN_ARGS),
    )
    chunk_arguments = {key: value for key, value in arguments.items() if key not in _GATHER_ONLY_ARGS}
    if doc_md and "doc_md" not in chunk_arguments and "doc" not in chunk_arguments:
        chunk_arguments["doc_md"] = doc_md
    mapped = chunk_class.partial(task_id=CHUNKS_TASK_ID, dag=dag, task_group=group, **chunk_arguments).expand(
        chunk=XComArg(plan)
    )
    if hasattr(mapped, "_operator_name"):
        # The UI names the mapped task after its class; this one shows what was iterated.
        mapped._operator_name = arguments["operator_name"]
    if chunk_class is ChunkedClassicIterateOperator:
        # Its arguments are no template fields (items render their own), so the mapped task
        # would not see the upstream tasks they reference.
        XComArg.apply_upstream_relationship(mapped, arguments["operator_kwargs"])
        XComArg.apply_upstream_relationship(mapped, arguments["iterate_input"])
    gather = IterateGatherOperator(
        task_id=GATHER_TASK_ID,
        dag=dag,
        task_group=group,
        chunk_results=XComArg(mapped),
        chunk_summaries=XComArg(mapped, key=SUMMARY_KEY),
        chunk_failures=XComArg(mapped, key=FAILURES_KEY),
        chunk_item_xcom_keys=XComArg(mapped, key=ITEM_XCOM_KEYS_KEY),
        plan_task_id=plan.task_id,
        chunks_task_id=mapped.task_id,
        max_failures=settings.max_failures,
        **shared(*_GATHER_ONLY_ARGS),
    )
    output = ChunkedOutput(gather)
    output.plan = plan
    return output
