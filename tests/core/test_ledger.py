"""The item ledger document: what it says, and that it stays small however large the run."""

from __future__ import annotations

import json
from typing import Any

from airflow_iterate._core import ItemFailure, RunStatistics
from airflow_iterate._core._ledger import (
    FAILURES_IN_DOCUMENT,
    FAILURES_PER_PAGE,
    LEDGER_KEY,
    MAX_DOCUMENT_CHARS,
    Ledger,
    RunningItem,
    done_ranges,
    failure_page_key,
)


class MemoryStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.puts: list[str] = []

    def put(self, name: str, value: Any) -> None:
        self.values[name] = json.loads(json.dumps(value))  # what a JSON store keeps
        self.puts.append(name)


def stats(**counts: Any) -> RunStatistics:
    base = dict(
        concurrency=8, total=100, started=0, succeeded=0, failed=0, resumed=0, retried=0,
        in_flight=0, peak_in_flight=0, elapsed=1.0,
    )  # fmt: skip
    return RunStatistics(**{**base, **counts})


def failure(index: int, message: str = "boom") -> ItemFailure:
    return ItemFailure(index, f"/in/{index}.xml", ConnectionError(message), f"ConnectionError: {message}", 3)


def test_done_ranges_are_what_was_pulled_minus_what_runs() -> None:
    assert done_ranges(0, 10, []) == [[0, 10]]
    assert done_ranges(0, 10, [3, 4, 9]) == [[0, 3], [5, 9]]
    assert done_ranges(100, 5, [100]) == [[101, 105]]  # a chunk's positions in the whole input
    assert done_ranges(0, 0, []) == []


def test_the_document_names_counts_items_in_flight_and_failures() -> None:
    store = MemoryStore()
    ledger = Ledger(store, about={"try_number": 2}, clock=lambda: 1_700_000_000.0)
    running = [
        RunningItem(7, "/in/7.xml", 2, 1_699_999_990.0),
        RunningItem(5, "/in/5.xml", 1, 1_699_999_995.0),
    ]
    ledger.write(
        stats(started=10, succeeded=7, failed=1, retried=3, in_flight=2),
        state="running", offset=0, pulled=10, running=running, failures=[failure(3, "reset by peer")],
    )  # fmt: skip
    doc = store.values[LEDGER_KEY]
    assert doc["schema"] == "airflow-iterate/item-ledger" and doc["version"] == 1
    assert doc["try_number"] == 2 and doc["state"] == "running"
    assert doc["counts"] == {
        "done": 8, "succeeded": 7, "failed": 1, "resumed": 0, "retried": 3, "in_flight": 2, "overloaded": 0,
    }  # fmt: skip
    assert [i["index"] for i in doc["in_flight"]] == [5, 7]
    assert doc["in_flight"][1] == {
        "index": 7, "label": "/in/7.xml", "attempt": 2, "running_since": "2023-11-14T22:13:10.000+00:00",
    }  # fmt: skip
    assert doc["failed"] == [
        {"index": 3, "label": "/in/3.xml", "error_type": "ConnectionError", "message": "reset by peer",
         "attempts": 3}
    ]  # fmt: skip
    assert doc["done_ranges"] == [[0, 5], [6, 7], [8, 10]]
    assert store.values[failure_page_key(0)] == doc["failed"]


def test_a_huge_run_keeps_the_document_small_and_pages_its_failures() -> None:
    store = MemoryStore()
    ledger = Ledger(store)
    failures = [failure(i * 10, "x" * 2_000) for i in range(100_000)]
    running = [RunningItem(n * 97, "y" * 5_000, 1, 0.0) for n in range(10_000)]  # spread: many ranges
    doc = ledger.write(
        stats(total=1_000_000, started=1_000_000, succeeded=890_000, failed=100_000, in_flight=10_000),
        state="running", offset=0, pulled=1_000_000, running=running, failures=failures,
    )  # fmt: skip
    assert len(json.dumps(store.values[LEDGER_KEY])) <= MAX_DOCUMENT_CHARS
    assert doc["counts"]["failed"] == 100_000 and doc["counts"]["in_flight"] == 10_000
    assert len(doc["failed"]) <= FAILURES_IN_DOCUMENT and doc["failed_pages"] == 100_000 // FAILURES_PER_PAGE
    assert not doc["done_ranges_complete"]
    page = store.values[failure_page_key(1999)]
    assert len(page) == FAILURES_PER_PAGE and page[-1]["index"] == 999_990
    assert all(len(json.dumps(store.values[key])) <= MAX_DOCUMENT_CHARS for key in store.values)

    # the next write rewrites only what changed: the document, and the last page once it grows
    store.puts.clear()
    failures.append(failure(999_999))
    ledger.write(
        stats(total=1_000_000, failed=100_001), state="running", offset=0, pulled=1_000_000,
        running=[], failures=failures,
    )  # fmt: skip
    assert store.puts == [failure_page_key(2000), LEDGER_KEY]


def test_a_run_writes_its_ledger_while_it_runs_and_at_the_end() -> None:
    import asyncio
    import threading
    import time

    from airflow_iterate._core import ItemRunner, RunOptions

    store = MemoryStore()
    gate = threading.Event()

    async def body(position: int, item: int) -> int:
        if item >= 50:
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 30)
        if item % 25 == 7:
            raise ConnectionError(f"no answer for {item}")
        return item

    options = RunOptions(concurrency=10, max_failures=None, progress_interval=0.05)
    runner: ItemRunner[int, int] = ItemRunner(
        body, options, is_async=True, describe=lambda i: f"file-{i}.xml", ledger=Ledger(store)
    )
    thread = threading.Thread(target=runner.run, args=(range(100),))
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until a document shows the ten items waiting at the gate
        doc = store.values.get(LEDGER_KEY)
        if doc and doc["counts"]["in_flight"] == 10 and doc["counts"]["done"] == 50:
            break
        gate.wait(0.02)
    live = store.values[LEDGER_KEY]
    gate.set()
    thread.join(30)

    assert live["state"] == "running" and live["total"] == 100
    assert [item["label"] for item in live["in_flight"]] == [f"file-{i}.xml" for i in range(50, 60)]
    assert live["done_ranges"] == [[0, 50]]
    final = store.values[LEDGER_KEY]
    assert final["state"] == "success" and final["done_ranges"] == [[0, 100]]
    assert final["counts"]["succeeded"] == 96 and final["counts"]["failed"] == 4
    assert [(f["index"], f["label"], f["error_type"]) for f in final["failed"]] == [
        (i, f"file-{i}.xml", "ConnectionError") for i in (7, 32, 57, 82)
    ]


def test_the_failure_pages_end_sorted_and_complete_whatever_order_items_failed_in() -> None:
    import asyncio

    from airflow_iterate._core import ItemRunner, RunOptions

    store = MemoryStore()
    count = 3 * FAILURES_PER_PAGE - 30

    async def fail(position: int, item: int) -> int:
        await asyncio.sleep(0.003 * (count - item))  # the last items fail first
        raise ValueError(f"item {item}")

    options = RunOptions(concurrency=count, max_failures=None, progress_interval=0.05)
    runner: ItemRunner[int, int] = ItemRunner(fail, options, is_async=True, ledger=Ledger(store))
    runner.run(range(count))
    doc = store.values[LEDGER_KEY]
    pages = [store.values[failure_page_key(page)] for page in range(doc["failed_pages"])]
    assert [entry["index"] for page in pages for entry in page] == list(range(count))
