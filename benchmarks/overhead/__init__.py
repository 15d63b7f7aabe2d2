"""Per-item overhead of ``.iterate()`` against the raw asyncio / thread-pool floors and ``.expand()``.

Run from the repository root::

    python -m benchmarks.overhead            # full sizes, about two minutes
    python -m benchmarks.overhead --quick    # smaller sizes, under a minute

Layout::

    _config.py   sizes for the full and quick runs
    _env.py      throwaway AIRFLOW_HOME, metadata DB migration, subprocess helper
    _timing.py   repeated, interleaved wall-clock timing (best and median)
    _micro.py    in-process timings: raw floors, ItemRunner, ItemInvoker + ItemRunner
    _memory.py   subprocess entry point: RSS of one large async run
    _dagrun.py   subprocess entry point: real dag.test() runs of .iterate() and .expand()
    _machine.py  what the numbers were measured on
    _results.py  per-item rows, ratios against the targets, the task log cross-check
    _report.py   markdown table and PNG chart
"""
