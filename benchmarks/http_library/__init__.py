"""Which HTTP library ``airflow_iterate.http`` is built on: aiohttp or httpx, measured raw.

``python -m benchmarks.http_library`` (``--quick`` for a short run): see ``__main__``.
"""
