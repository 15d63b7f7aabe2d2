"""How fast the Items tab's JSON endpoints answer for a task of 1,000,000 items and 100,000 failures.

``python -m benchmarks.itemstab [--quick]``: a real API server (the plugin mounted as in any
deployment) over a SQLite metadata DB holding the ledger such a task writes; every request goes
over HTTP with a JWT, as the tab's own requests do. Reported, never asserted.
"""
