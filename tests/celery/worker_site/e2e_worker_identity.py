"""``[core] hostname_callable`` for the Celery workers of the end-to-end test.

Both workers run on this one machine, so the default (the FQDN) would give every task instance
the same hostname. Each worker process gets its own name in ``E2E_WORKER_NAME`` instead, and the
REST API then tells which worker ran which try of which chunk.
"""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["E2E_WORKER_NAME"]
