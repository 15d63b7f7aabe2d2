"""Provider metadata for ``airflow providers list``.

Kept outside ``airflow_iterate`` on purpose: Airflow discovers providers while its configuration
module is still initialising, and importing ``airflow_iterate`` (which extends the Task SDK) at that
moment would be a circular import.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any


def get_provider_info() -> dict[str, Any]:
    try:
        current = version("airflow-iterate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        current = "0.0.0"
    return {
        "package-name": "airflow-iterate",
        "name": "Iterate",
        "description": "Run thousands of small I/O-bound steps inside one task instance with ``.iterate()``.",
        "versions": [current],
    }
