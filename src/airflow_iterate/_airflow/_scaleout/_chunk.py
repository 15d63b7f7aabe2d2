"""The chunk task: one mapped task instance iterating over its window of the input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._core import IterateInputError, short_repr
from .._classic import _ClassicIterateOperator
from .._inputs import ItemSource
from .._item_context import ItemXComs
from .._operator import IterateOperator, _PythonIterateOperator

__all__ = ["ITEM_XCOM_KEYS_KEY", "ChunkedClassicIterateOperator", "ChunkedPythonIterateOperator"]

#: the keys of the XComs a chunk's items pushed, for the gather to combine
ITEM_XCOM_KEYS_KEY = "iterate_item_xcom_keys"


def chunk_bounds_of(chunk: Any) -> tuple[int, int]:
    """``(start, stop)`` of a descriptor from the plan task; a clear error for anything else."""
    if isinstance(chunk, Mapping):
        start, stop = chunk.get("start"), chunk.get("stop")
        if isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop:
            return start, stop
    raise IterateInputError(
        f"expected a chunk descriptor like {{'start': 0, 'stop': 100}} from the plan task, "
        f"got {short_repr(chunk)}"
    )


class _ChunkOperator(IterateOperator):
    """Runs one chunk (``start..stop`` of the input) of a chunked iterate; mapped over descriptors.

    The window names its items by their place in the whole input, so ``iterate_index``, failures,
    the checkpoint and the items' XComs all use global positions.
    """

    def __init__(self, *, chunk: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk = chunk

    def _resolved_input(self, context: Any) -> ItemSource:
        start, stop = chunk_bounds_of(self.chunk)
        return super()._resolved_input(context).window(start, stop)

    def _ledger_about(self, items: ItemSource, total: int | None) -> dict[str, Any]:
        start, stop = chunk_bounds_of(self.chunk)
        return {**super()._ledger_about(items, total), "chunk": {"start": start, "stop": stop}}

    def _publish_item_xcoms(self, ti: Any, sink: ItemXComs, start: int, count: int) -> list[str]:
        pushed = super()._publish_item_xcoms(ti, sink, start, count)
        if pushed:
            ti.xcom_push(key=ITEM_XCOM_KEYS_KEY, value=pushed)
        return pushed

    def execute(self, context: Any) -> list[Any]:
        start, stop = chunk_bounds_of(self.chunk)
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
