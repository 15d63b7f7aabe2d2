"""The 17,000-file SFTP job chunked over Celery workers: two workers against one, in the same run.

``python -m benchmarks.scaleout [--quick]`` starts a real CeleryExecutor deployment (Redis,
api-server, scheduler, dag-processor, two Celery workers of one slot each; the end-to-end tests'
harness), the benchmark's OpenSSH server behind the 20 ms delay proxy, and runs three DAGs over the
same files: the unchunked `.iterate()` task on one worker, `chunks=2` on that one worker, and
`chunks=2` over both workers. It writes scaleout.json, scaleout.md and scaleout.png to
``benchmarks/results``.
"""
