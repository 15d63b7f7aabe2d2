"""Provider metadata for ``airflow providers list``.

Kept outside ``airflow_iterate`` on purpose: Airflow discovers providers while its configuration
module is still initialising, and importing ``airflow_iterate`` (which extends the Task SDK) at that
moment would be a circular import.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

#: ``[iterate] quiet_loggers`` when unset (airflow_iterate reads it from here)
DEFAULT_QUIET_LOGGERS = "asyncssh,paramiko"


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
        # Shown by `airflow config list`; read with a fallback, so it works before providers load.
        "config": {
            "iterate": {
                "description": "Settings of iterated tasks (.iterate()) for the whole deployment.",
                "options": {
                    "quiet_loggers": {
                        "description": (
                            "Loggers raised to WARNING while an iterated task runs (comma separated; "
                            "empty for none): libraries that log each connection or item at INFO. A "
                            "logger given a level elsewhere keeps it."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "asyncssh,paramiko,httpx",
                        "default": DEFAULT_QUIET_LOGGERS,
                    }
                },
            }
        },
    }
