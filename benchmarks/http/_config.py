"""What one run measures: how many calls each row makes, the link, the deployment's size."""

from __future__ import annotations

from dataclasses import dataclass

#: the issue's job: 10,000 detail GETs, one record each
CALLS = 10_000
#: the paginated listing: 1,000 pages of PAGE_SIZE record summaries
PAGES = 1_000
PAGE_SIZE = 10
DEFAULT_RTT_MS = 20.0
#: LocalExecutor slots of the deployment (as the SFTP benchmark's)
PARALLELISM = 4
#: the task retries of rows 1 and 2 and the listing's operators (see _dags_provider.py)
RETRIES = 3
#: calls in flight for the hooks' async rows: .iterate()'s default for async items
HOOK_CONCURRENCY = 128
#: the raw clients' calls (and connections) in flight, tuned on this machine: aiohttp gains up to
#: about 128; httpx's pool checks every connection for every request, so it is best with few
RAW_CONCURRENCY = {"httpx": 16, "aiohttp": 128}
#: row 5's variant: fewer connections per host than items in flight, for a server that wants fewer
FEWER_CONNECTIONS = 32


@dataclass(frozen=True)
class Sizes:
    #: calls of the fast rows (the whole job)
    calls: int
    #: rows 1 and 2: a task instance per call, measured on a subset
    expand: int
    deferrable: int
    #: the sync hook: a connection per call, one call at a time
    hook_sync: int
    hook_async_per_call: int
    raw_httpx: int
    #: the listing: pages read by the package's helper, the sync HttpOperator and the deferrable one
    #: (0 for the sync one: not measured; the deferrable one made serializable runs only when its
    #: size is above 2, the page on which the provider's own fails)
    pages: int
    pages_sync: int
    pages_deferrable: int
    #: seconds the idle deployment is watched for its background DB load
    idle_seconds: float
    #: attempts at a short row disturbed by other load on the machine
    attempts: int


FULL = Sizes(
    calls=CALLS,
    expand=200,
    deferrable=200,
    hook_sync=1_000,
    hook_async_per_call=CALLS,
    raw_httpx=CALLS,
    pages=PAGES,
    pages_sync=PAGES,
    pages_deferrable=25,
    idle_seconds=30.0,
    attempts=2,
)
# a check that every row still runs, in minutes on 2 cores: small subsets, and the listing only as
# the provider's deferrable operator fails it and as the package's helper reads it
QUICK = Sizes(
    calls=1_000,
    expand=6,
    deferrable=6,
    hook_sync=100,
    hook_async_per_call=1_000,
    raw_httpx=500,
    pages=100,
    pages_sync=0,
    pages_deferrable=2,
    idle_seconds=5.0,
    attempts=1,
)
