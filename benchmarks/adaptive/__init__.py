"""``python -m benchmarks.adaptive``: ``concurrency="auto"`` against a real HTTP server.

Real runs of the engine (``ItemRunner``, async items, one shared ``httpx.AsyncClient`` per run)
against ``devtools.http_server`` with a capacity (503 beyond it), compared with a sweep of fixed
concurrencies measured in the same run; then the server's capacity halved and restored under a
running ``"auto"`` run, and two ``"auto"`` runs (two processes) sharing one server.
"""
