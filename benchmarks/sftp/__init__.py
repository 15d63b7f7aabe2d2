"""The proposal's table, reproduced: 17,000 small XML files read over SFTP in six ways.

Run from the repository root (needs /usr/sbin/sshd: ``make system-packages``)::

    python -m benchmarks.sftp              # 17,000 files at 20 ms RTT and at ~0 ms, ~17 minutes
    python -m benchmarks.sftp --quick      # 1,000 files and small subsets, under 3 minutes
    python -m benchmarks.sftp --rtt-ms 50  # another delay; --no-zero-rtt skips the second table
    python -m benchmarks.sftp --only raw,iterate_default [--profile]   # a few rows, no report

Nothing is set up by hand: an OpenSSH sshd on 127.0.0.1 with its own keys, a delay proxy in front
of it, generated files, a throwaway AIRFLOW_HOME, and for row 1 a whole Airflow deployment.

Layout::

    _config.py        sizes of the full and quick runs, the rows' knobs
    _data.py          the XML files (fixed seed)
    _servers.py       sshd + delay proxy, one Airflow connection per link
    _accounting.py    CPU and RSS of processes and process trees, the machine's other load
    _rows.py          rows 2-6, each in a subprocess of its own, with the server's CPU around it
    _client_main.py   subprocess: rows 2, 3, 4, 6 in a plain process (code in _clients.py)
    _dagtest.py       subprocess: row 5, .iterate() in a real task instance via dag.test()
    _whatif.py        the package changes row 5's profile points at, as patches for one row
    _scheduler.py     row 1: mapped SFTPOperator through a real scheduler (DAG in _expand_dag.py)
    _results.py       one measurement, rates, extrapolation, the targets
    _report.py        markdown tables and the chart; _notes.py says how each number was taken
    _publish.py       sftp.json, then sftp.md and sftp.png from it
"""
