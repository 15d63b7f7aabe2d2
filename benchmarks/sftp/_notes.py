"""How each number was obtained, stated next to the numbers."""

from __future__ import annotations

from ._config import HOOK_ASYNC_CONCURRENCY, PARALLELISM, PROPOSAL_FILES, Sizes
from ._results import Measurement


def notes(rows: list[Measurement], sizes: Sizes, rtt_ms: float) -> list[str]:
    found = [
        f"Links: the delay proxy holds every chunk {rtt_ms / 2:g} ms each way (a {rtt_ms:g} ms round trip) "
        "and runs as a thread of the orchestrating process, never inside a measured client. "
        "~0 ms means the client talks to sshd directly.",
        f"Row 1 runs a real api-server, scheduler (LocalExecutor, `parallelism={PARALLELISM}`) and "
        "dag-processor on loopback with SQLite (the end-to-end tests' harness), "
        f"`AIRFLOW__CORE__MAX_MAP_LENGTH` raised as a user would, on {sizes.expand:,} files; its wall time "
        "is the DAG run's start to end date from the REST API, its CPU time that of every process of the "
        "deployment (task processes included), its peak RSS the largest sampled sum over them.",
        "Rows 2, 3, 4 and 6 call the hooks / pool / asyncssh directly in a plain Python process of their "
        "own (no task instance around them); the window timed starts after the imports and includes "
        "opening every connection. Row 2 holds one `get_managed_conn()` connection for the loop and "
        "reads each file into memory with `retrieve_file()`; row 3 creates a `SFTPHookAsync` per file "
        f"({HOOK_ASYNC_CONCURRENCY} files in flight); row 4 reads with `sftp.open()` + `read()` on a "
        "client borrowed from the provider's pool, with as many files in flight as the pool has "
        "connections.",
        "Row 5 is a DAG run by `dag.test()` in a process of its own: a task returns the file list (as "
        "the process's first task instance it also takes the one-off start of dag.test()'s in-process "
        "API), then `fetch.partial(conn_id=...).iterate(path=...)` runs one `async def` item per file, "
        "`SFTPPool.shared(conn_id)` + `download_bytes`, with checkpoints, progress and the XCom of every "
        "file's size; wall time is that task instance's recorded duration, CPU time the process's from "
        "the end of the listing task to the end of the run.",
        "Row 6 uses asyncssh's SFTP request layer directly (open, one read of up to 255 KiB, a close that "
        "is not waited for), `aes128-gcm@openssh.com`, no Airflow: what one Python process can do here.",
        "Client CPU s: user + system time of the client processes over the timed window; the whole "
        "subprocess (imports, start-up) is in sftp.json as `process_cpu`. Peak RSS: the client "
        "subprocess's whole life (wait4), Airflow's import included. sshd CPU s: the server's "
        "processes, forked per connection.",
        f"Rows measured on fewer than {PROPOSAL_FILES:,} files are extrapolated at their measured rate "
        "and say so. vs (1) / vs (6): files/s of the row divided by files/s of row 1 / row 6 on the same "
        "link, so vs (1) is also how many times cheaper per file.",
    ]
    busiest = max(rows, key=lambda r: r.proxy_cpu / r.wall)
    found.append(
        f"The proxy was busiest in row {busiest.number} `{busiest.key}` ({busiest.link}): "
        f"{busiest.proxy_cpu / busiest.wall:.0%} of one core, so it was not the bottleneck."
        if busiest.proxy_cpu / busiest.wall < 0.8
        else f"The proxy used {busiest.proxy_cpu / busiest.wall:.0%} of a core in row {busiest.number} "
        f"`{busiest.key}`: it may have limited that row."
    )
    return found
