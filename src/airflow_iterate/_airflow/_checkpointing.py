"""Where an iterated task keeps its checkpoint: Airflow's task state store, or a directory.

``context["task_state_store"]`` (Airflow 3.3+) survives task retries, whichever worker runs them.
Without it, checkpoints go to ``$AIRFLOW_HOME/iterate-checkpoints`` (or the directory in
``AIRFLOW_ITERATE_CHECKPOINT_DIR``), which helps only a retry that sees the same directory. A
successful run deletes its own; those of runs that failed for good (kept so that clearing the task
resumes it) are removed once they are a week old, when a task next opens a checkpoint there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._core import Checkpoint, DirectoryStateStore
from ._compat import xcom_serde
from ._rerun import apply_rerun_request

#: keys under the task instance's own state store; user keys never start with this
NAMESPACE = "v1"
CHECKPOINT_DIR_ENV = "AIRFLOW_ITERATE_CHECKPOINT_DIR"
#: checkpoint files in the fallback directory older than this are of runs nobody will resume
MAX_AGE_SECONDS = 7 * 24 * 3600
#: every file of a checkpoint is named after its key, which starts with this
_FILE_PREFIX = "airflow_iterate_"
_pruned: set[Path] = set()


def _serde() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    # The same encoding as XCom, so a resumed result comes back as the type it was (tuple, datetime, ...).
    serde = xcom_serde()
    if serde is None:  # pragma: no cover - plain JSON values only
        return (lambda v: v), (lambda v: v)
    return serde


def fallback_directory() -> Path:
    configured = os.environ.get(CHECKPOINT_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "iterate-checkpoints"


def open_checkpoint(
    context: Mapping[str, Any], log: Any, *, extras: Callable[[int], Any] | None = None
) -> tuple[Checkpoint, str]:
    """The checkpoint of this task instance and a description of where it lives."""
    encode, decode = _serde()
    store = context.get("task_state_store")
    if store is not None:
        checkpoint = Checkpoint(
            store, NAMESPACE, encode=encode, decode=decode, extras=extras, keep_finished_runs=True
        )
        apply_rerun_request(checkpoint, store, log)
        return checkpoint, "the task state store"
    ti = context["ti"]
    directory = fallback_directory()
    _prune(directory, log)
    namespace = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
    log.warning(
        "This Airflow has no task state store (Airflow 3.3+); iterate checkpoints go to %s, which "
        "helps only a retry on a machine that sees that directory (set %s to a shared mount)",
        directory,
        CHECKPOINT_DIR_ENV,
    )
    return (
        Checkpoint(DirectoryStateStore(directory), namespace, encode=encode, decode=decode, extras=extras),
        str(directory),
    )


def _prune(directory: Path, log: Any) -> None:
    """Remove this package's checkpoint files older than :data:`MAX_AGE_SECONDS`, once per process."""
    if directory in _pruned:
        return
    _pruned.add(directory)
    cutoff = time.time() - MAX_AGE_SECONDS
    removed = 0
    try:
        for path in directory.glob(f"{_FILE_PREFIX}*.json"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another task pruned it first
                continue
    except OSError as exc:  # pruning is housekeeping: the run goes on without it
        log.warning("Could not prune old iterate checkpoints in %s: %s", directory, exc)
        return
    if removed:
        log.info("Removed %d iterate checkpoint file(s) older than a week from %s", removed, directory)
