"""What one run measures: the data set, the links, and how many files each row reads."""

from __future__ import annotations

from dataclasses import dataclass

#: the proposal's data set; rows measured on fewer files are extrapolated to it
PROPOSAL_FILES = 17_000
DEFAULT_RTT_MS = 20.0
#: files in flight for the hook-per-file row (the proposal's async task ran 16 at a time)
HOOK_ASYNC_CONCURRENCY = 16
#: provider pool sizes tried besides its default (os.cpu_count())
PROVIDER_POOL_SIZES = (16, 32, 64, 128)
#: .iterate()'s concurrency in the second variant of row 5 (the default for async items is 128)
LOW_CONCURRENCY = 32
#: the hand-written asyncssh client: connections and reads in flight
RAW_CONNECTIONS = 4
RAW_IN_FLIGHT = 128
#: LocalExecutor slots of the deployment that runs the mapped SFTPOperator (its harness's default)
PARALLELISM = 4


@dataclass(frozen=True)
class Sizes:
    #: files generated and read by the fast rows
    files: int
    #: the mapped SFTPOperator, one task instance per file
    expand: int
    #: the sync SFTPHook loop, one file at a time
    hook_sync: int
    #: SFTPHookAsync with a connection per file, and the provider pool at its default size:
    #: both handshake-bound, so far slower than the rest
    hook_async: int
    provider_default: int
    #: attempts at a short row disturbed by other load on the machine
    attempts: int


FULL = Sizes(
    files=PROPOSAL_FILES,
    expand=300,
    hook_sync=1_000,
    hook_async=2_000,
    provider_default=2_000,
    attempts=3,
)
# make bench-quick (all three benchmarks) stays under 3 minutes on 2 cores
QUICK = Sizes(files=1_000, expand=15, hook_sync=40, hook_async=120, provider_default=120, attempts=1)
