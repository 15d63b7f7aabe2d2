"""The checkpoint directory used where Airflow has no task state store (3.1, 3.2).

Exercised directly (the task state store of the Airflow this suite runs on would otherwise be
chosen); a stand-in task instance names the run, as a real one would.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_iterate._airflow import _checkpointing
from airflow_iterate._airflow._checkpointing import CHECKPOINT_DIR_ENV, MAX_AGE_SECONDS, open_checkpoint


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path / "checkpoints"))
    monkeypatch.setattr(_checkpointing, "_pruned", set())
    return tmp_path / "checkpoints"


def _context(run_id: str) -> dict[str, object]:
    ti = SimpleNamespace(dag_id="sales", run_id=run_id, task_id="fetch", map_index=-1)
    return {"ti": ti}


def test_a_checkpoint_survives_to_the_next_attempt_and_old_ones_are_pruned(directory: Path) -> None:
    log = logging.getLogger("test")
    checkpoint, where = open_checkpoint(_context("failed_for_good"), log)
    checkpoint.record(0, "a.xml", 3)
    checkpoint.flush()
    old = sorted(directory.glob("*.json"))
    assert len(old) == 1 and where == str(directory)
    week_and_a_day = time.time() - MAX_AGE_SECONDS - 86_400
    os.utime(old[0], (week_and_a_day, week_and_a_day))
    unrelated = directory / "notes.json"  # not ours: never touched
    unrelated.write_text("{}")
    os.utime(unrelated, (week_and_a_day, week_and_a_day))

    recent, _ = open_checkpoint(_context("retrying"), log)
    recent.record(0, "b.xml", 4)
    recent.flush()
    _checkpointing._pruned.clear()  # as in the next task process

    again, _ = open_checkpoint(_context("retrying"), log)
    assert again.completed == {0: (again.completed[0][0], 4)}
    assert not old[0].exists()
    assert unrelated.exists()
