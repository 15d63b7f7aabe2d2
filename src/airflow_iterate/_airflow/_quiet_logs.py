"""Libraries that log per connection or per item, quieted while an iterated task runs.

asyncssh logs every handshake, authentication and channel at INFO (~60 lines per task with a
pool, one set per item for a classic ``SFTPOperator``); at 17,000 items that buries the task's
own lines. Platform teams choose the list in ``[iterate] quiet_loggers`` (empty: none).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from airflow_iterate_provider import DEFAULT_QUIET_LOGGERS

from ._compat import config_value

__all__ = ["configured_loggers", "quiet_libraries"]


def configured_loggers() -> list[str]:
    raw = config_value("iterate", "quiet_loggers", DEFAULT_QUIET_LOGGERS)
    return [name.strip() for name in raw.split(",") if name.strip()]


@contextlib.contextmanager
def quiet_libraries(names: list[str] | None = None) -> Iterator[list[str]]:
    """Raise the named loggers to WARNING for the block; yields the ones it changed.

    A logger whose level someone set (anything but NOTSET) is left alone: an explicit
    ``logging.getLogger("asyncssh").setLevel(DEBUG)`` in a DAG or logging config still wins.
    """
    changed = []
    for name in configured_loggers() if names is None else names:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
            changed.append(logger)
    try:
        yield [logger.name for logger in changed]
    finally:
        for logger in changed:
            logger.setLevel(logging.NOTSET)
