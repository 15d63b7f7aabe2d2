"""Putting a chunked iterate in the DAG: the plan / chunks / gather task group."""

from __future__ import annotations

from typing import Any

from airflow.sdk import TaskGroup, XComArg

from ..._core import IterateUsageError
from .._classic import _ClassicIterateOperator
from .._compat import DagContext, PlainXComArg, TaskGroupContext
from .._operator import IterateOperator
from .._reporting import FAILURES_KEY, SUMMARY_KEY
from ._chunk import ITEM_XCOM_KEYS_KEY, ChunkedClassicIterateOperator, ChunkedPythonIterateOperator
from ._gather import IterateGatherOperator
from ._plan import IteratePlanOperator

__all__ = ["ChunkedOutput", "build_chunked"]

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
        # No label from the DAG's default_args: an iterated task's map_index_template names items.
        named = {key: arguments[key] for key in (*_SHARED_ARGS, *extra) if key in arguments}
        return {**named, "map_index_template": None}

    plan = IteratePlanOperator(
        task_id=PLAN_TASK_ID,
        dag=dag,
        task_group=group,
        iterate_input=arguments["iterate_input"],
        chunk_size=settings.chunk_size,
        chunks=settings.chunks,
        max_items=settings.run.max_items,
        **shared(*_PLAN_ARGS),
    )
    chunk_arguments = {key: value for key, value in arguments.items() if key not in _GATHER_ONLY_ARGS}
    chunk_arguments["map_index_template"] = None  # a chunk's items are no mapped instances to name
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
        XComArg.apply_upstream_relationship(mapped, arguments["iterate_input"].value)
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
        run_options=settings.run,
        **shared(*_GATHER_ONLY_ARGS),
    )
    output = ChunkedOutput(gather)
    output.plan = plan
    return output
