"""Markdown tables, as every benchmark report writes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A table's lines; ``align`` has one letter per column: ``l`` left, anything else right."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def facts(values: Mapping[str, str]) -> list[str]:
    """A two-column table without a header: where, when and how a run was measured."""
    return table(["", ""], [[key, value] for key, value in values.items()], "ll")
