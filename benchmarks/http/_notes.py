"""How each number was obtained, stated next to the numbers."""

from __future__ import annotations

from typing import Any

from ._config import FEWER_CONNECTIONS, HOOK_CONCURRENCY, PAGE_SIZE, PARALLELISM, RETRIES, Sizes
from ._report import short_error
from ._results import Measurement


def notes(rows: list[Measurement], sizes: Sizes, rtt_ms: float, deployment: dict[str, Any]) -> list[str]:
    by_key = {(r.key, r.link): r for r in rows}
    found = [
        f"Server: the project's HTTP test server (`devtools/http_server.py`, uvicorn, one process) on "
        f"127.0.0.1 with {max(sizes.calls, sizes.pages * PAGE_SIZE):,} records of 2-10 KB of JSON, request "
        f"recording off. The delay proxy holds every chunk {rtt_ms / 2:g} ms each way (a {rtt_ms:g} ms round "
        "trip) and runs as a thread of the orchestrating process, never inside a measured client. Every "
        "call GETs `records/<id>` (ids 1..N), parses the JSON and returns the body's size; every row's "
        "total is checked against the server's records.",
        f"Rows 1 and 2 run in a real deployment: PostgreSQL (Debian's, started by the benchmark on "
        f"127.0.0.1 with its own data directory) as the metadata DB, api-server, scheduler "
        f"(`--skip-serve-logs`), dag-processor and triggerer (`--skip-serve-logs`: it would otherwise "
        f"serve its logs on 0.0.0.0:8794), LocalExecutor with `parallelism={PARALLELISM}`; every "
        "listening socket of every component was checked to be on loopback. Their wall time is the DAG "
        "run's start to end date from the REST API, their CPU time that of every process of the "
        "deployment (task processes and the triggerer included; PostgreSQL's is in the DB table), their "
        "peak RSS the largest sampled sum over them. Row 1 was measured on "
        f"{sizes.expand:,} calls and row 2 on {sizes.deferrable:,}, and both are extrapolated to "
        f"{rows[0].job if rows else 0:,} at their measured rate (a task instance per call: the cost is "
        "linear in calls).",
        f"Rows 1 and 2 give the operator `retries={RETRIES}, retry_delay=1s` (the listing's operators "
        "too): a deferred task instance whose trigger fires before the scheduler has processed the "
        "executor's 'success' for the deferring run is marked failed as 'state changed externally' "
        "(apache/airflow#66374, #71580, #72716), which happens more often the busier the machine. The "
        "task instances that needed a retry are counted below; one that failed all its tries leaves "
        "its call out of the row's calls (and fails the DAG run).",
        "Rows 3, 4 and 6 call the hooks / httpx / aiohttp directly in a plain Python process of their own "
        "(no task instance around them: a task adds the same fixed cost to each); the window timed starts "
        "after the imports. Row 3 calls `HttpHook(method='GET').run(endpoint)` in a loop, which builds a "
        "`requests` session (so opens a connection) per call. Row 4 per call: `HttpAsyncHook.run()` with "
        "an `aiohttp.ClientSession` per call, which is how `HttpTrigger` makes each deferred request; "
        "row 4 shared: one `HttpAsyncHook.session()` for all calls (aiohttp's default connector: 100 "
        f"connections). Both gather every call under `asyncio.Semaphore({HOOK_CONCURRENCY})`, .iterate()'s "
        "default concurrency for async items.",
        "Row 5 is a DAG run by `dag.test()` in a process of its own against the same PostgreSQL: a task "
        "returns the ids, then `fetch.partial(conn_id=...).iterate(record_id=...)` runs one `async def` "
        "item per call with `HTTPClient.shared(conn_id)` and no option set, with checkpoints, progress "
        "and the XCom of every size; wall time is that task instance's recorded duration, CPU time the "
        "process's from the end of the listing task to the end of the run. The same DAG also ran in the "
        "deployment, for its DB load next to rows 1 and 2. Its variant sets "
        f"`max_connections_per_host={FEWER_CONNECTIONS}`: {HOOK_CONCURRENCY} items in flight share "
        f"{FEWER_CONNECTIONS} connections (one request at a time each), as for an API that wants fewer.",
        "Row 6 is the ceiling: httpx and aiohttp with one client, N connections and N calls in flight "
        "(N tuned on this machine), no Airflow. Row 6 'inside one `@task async def`' runs the raw "
        "aiohttp code in the same DAG as row 5, measured the same way (the task instance's duration, "
        "the process's CPU from the end of the listing task): what a task instance costs around the "
        "same calls, without `.iterate()`. vs (2) / vs (6): calls/s of the row divided by calls/s of "
        "row 2 / of the better raw client, so vs (2) is also how many times cheaper per call.",
        "DB load: PostgreSQL's cumulative statistics (`pg_stat_database`: transactions committed and "
        "rolled back, rows inserted / updated / deleted; `pg_stat_user_tables` per table; WAL bytes from "
        "`pg_current_wal_lsn()`) read just before a DAG run is triggered and again once it ended and "
        "every backend had published its counts (11.5 s later: an idle backend publishes within 10 s). "
        "What the idle deployment does in the part of that window outside the run is taken off; what it "
        "does while the run goes on (the scheduler's and triggerer's loops, heartbeats, this benchmark "
        "asking for the run's state once a second) is counted as the run's, since a longer run keeps "
        "the deployment busy longer. Per 1,000 calls: the run's numbers scaled by 1,000 / calls. "
        "Transactions include the read-only ones (most of the scheduler's); 'rows written' is rows "
        "inserted plus rows updated. The dag.test() row's window is its process's whole life (its DAG's "
        "registration included), with nothing else using the DB.",
        "Client CPU s: user + system time of the client processes over the timed window; the whole "
        "subprocess (imports, start-up) is in http.json as `process_cpu`. Peak RSS: the client subprocess's "
        "whole life (wait4), Airflow's import included. Server CPU s: the HTTP test server's process.",
    ]
    for key in ("expand", "deferrable"):
        row = by_key.get((key, "proxy"))
        if row is not None:
            found.append(
                f"Row {row.number} ({key}): {row.details.get('task_instances', 0):,} task instances, "
                f"{row.details.get('retried', 0)} of them retried"
                + (f"; {row.error}" if row.error else "")
                + f"; DAG run {row.wall:,.1f} s."
            )
    listing = by_key.get(("pages_deferrable", "proxy"))
    if listing is not None and listing.error:
        found.append(
            "The deferrable `HttpOperator` with a `pagination_function` fails on its second page as "
            f"released (apache-airflow-providers-http, on Airflow 3): `{short_error(listing.error)}` — it "
            "defers with "
            "the pages read so far as `requests.Response` objects in the resume kwargs, which the Task "
            "SDK cannot serialize. The next row makes them serializable with the provider's own "
            "`HttpResponseSerializer` (a subclass, in `benchmarks/http/_dags_provider.py`) to show what "
            "the design costs: every page is a trip through the triggerer and a resumed task process, "
            "and every page re-stores all the pages before it in the task instance's resume kwargs."
        )
    paged = [r for r in rows if r.key.startswith("pages_") and r.extrapolated and not r.error]
    if paged:
        names = ", ".join(f"{r.number} ({r.calls:,} pages)" for r in paged)
        found.append(
            f"Listing rows measured on fewer than {paged[0].job:,} pages are extrapolated at their measured "
            f"rate: {names}. For the deferrable one that is a lower bound: each page stores every page "
            "before it again, so its writes grow with the square of the pages."
        )
    busiest = max(rows, key=lambda r: r.proxy_cpu / r.wall) if rows else None
    if busiest is not None:
        share = busiest.proxy_cpu / busiest.wall
        found.append(
            f"The proxy was busiest in row {busiest.number} `{busiest.key}`: {share:.0%} of one core"
            + (", so it was not the bottleneck." if share < 0.8 else ": it may have limited that row.")
        )
    listeners = deployment.get("listeners")
    if listeners:
        found.append(
            "Listening sockets of the deployment's components (all on loopback): "
            + "; ".join(f"`{entry}`" for entry in listeners)
            + "."
        )
    return found
