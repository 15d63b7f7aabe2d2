"""Provider registration: makes ``airflow providers list`` show this package."""

from __future__ import annotations

from typing import Any

from .. import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-iterate",
        "name": "Iterate",
        "description": "Run thousands of small I/O-bound steps inside one task instance with ``.iterate()``.",
        "versions": [__version__],
    }
