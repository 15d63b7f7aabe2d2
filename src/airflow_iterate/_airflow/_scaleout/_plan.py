"""The plan task: the input's length, then one ``{"start", "stop"}`` descriptor per chunk."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, XComArg

from ..._core import IterateInputError
from .._compat import max_map_length
from .._inputs import IterateInput

__all__ = ["IteratePlanOperator", "chunk_bounds"]


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


class IteratePlanOperator(BaseOperator):
    """Splits an iterate input into chunk descriptors, reading its length only."""

    template_fields: ClassVar[tuple[str, ...]] = ("pending_parts",)
    custom_operator_name = "iterate: plan chunks"
    ui_color = "#eaf4fb"

    def __init__(
        self,
        *,
        iterate_input: IterateInput,
        chunk_size: int | None,
        chunks: int | None,
        max_items: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input = iterate_input
        parts = iterate_input.parts()
        # Literal parts are measured now; only the XComArgs are templated: resolving one yields
        # a lazy sequence (the output of a mapped task) or the one XCom value, and only its
        # len() is taken.
        self.known_lengths = {
            name: iterate_input.part_length(name, value)
            for name, value in parts.items()
            if not isinstance(value, XComArg)
        }
        self.pending_parts: Mapping[str, Any] = {n: v for n, v in parts.items() if isinstance(v, XComArg)}
        self.chunk_size = chunk_size
        self.chunks = chunks
        self.max_items = max_items

    def execute(self, context: Any) -> list[dict[str, int]]:
        lengths = dict(self.known_lengths)
        for name, value in self.pending_parts.items():
            lengths[name] = self.input.part_length(name, value)
        total = math.prod(lengths.values())
        if self.max_items is not None and total > self.max_items:
            raise IterateInputError(
                f"the input has {total:,} items, over max_items={self.max_items:,}; raise max_items if "
                "this is intended, or split the input into several runs"
            )
        bounds = chunk_bounds(total, chunk_size=self.chunk_size, chunks=self.chunks)
        limit = max_map_length()
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
