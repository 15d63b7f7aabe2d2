"""What an iterated task costs the metadata database, against ``.expand()``.

Rows added and writes sent (INSERT / UPDATE / DELETE, by table, with their bytes) by one
``dag.test()`` run of each case: ``.iterate()`` over no-op items with the item ledger and the
checkpoint, without the ledger, without either, a run lasting several progress intervals, and
``.expand()``. Run from the repository root::

    python -m benchmarks.dbload            # full sizes, about five minutes
    python -m benchmarks.dbload --quick    # 10x smaller, about a minute

Layout::

    _config.py    sizes for the full and quick runs
    _counting.py  the SQLAlchemy listener counting writes by table, and row counts
    _runs.py      subprocess entry point: the DAGs, the "ledger off" patch, one dag.test() per case
    _results.py   one summary per case, the writes per progress interval
    _report.py    markdown report and PNG chart
"""
