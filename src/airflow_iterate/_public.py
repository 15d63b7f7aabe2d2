"""Presenting public names as their public module's, as trio and httpx do.

A class defined in ``airflow_iterate._core._errors`` and exported as ``airflow_iterate.X`` would
show its private path in tracebacks, reprs and documentation (``airflow_iterate._core._errors.
ItemsFailedError``); a user should see the name they import. Pickling keeps working: the public
module exports every name it renames.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["present_as"]


def present_as(module: str, namespace: dict[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__`` of the classes and functions ``names`` in ``namespace`` to ``module``.

    Only what this package defines below ``module`` is renamed; names it re-exports from Airflow
    (``BaseAsyncOperator`` on Airflow 3.2+) keep their own.
    """
    for name in names:
        obj = namespace[name]
        if callable(obj) and str(getattr(obj, "__module__", "")).startswith(f"{module}."):
            obj.__module__ = module
