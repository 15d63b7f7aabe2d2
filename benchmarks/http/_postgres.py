"""A real PostgreSQL as Airflow's metadata DB, and what a run wrote to it.

Debian's ``postgresql`` binaries run in the foreground as a subprocess of the benchmark, with
their own data directory, on 127.0.0.1 and a free port, and a Unix socket in that directory
(never the system's /var/run/postgresql). PostgreSQL refuses to run as root: as root (CI, the
development machines) the server runs as ``nobody``, which owns the directory.

The load is read from PostgreSQL's cumulative statistics: ``pg_stat_database`` (transactions,
rows inserted / updated / deleted in the database) and ``pg_stat_user_tables`` (the same per
table), plus the WAL written. Backends publish their counts when a transaction ends, at most once
a second, and an idle backend within ``PGSTAT_IDLE_INTERVAL`` (10 s), or when it exits: a window
is read once its processes exited, or after :data:`STATS_SETTLE` seconds.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e._deployment import LOOPBACK, free_loopback_port

#: where Debian installs each major version's server binaries
DEBIAN_PREFIX = Path("/usr/lib/postgresql")
#: the user the server runs as when the benchmark runs as root
UNPRIVILEGED_USER = "nobody"
DATABASE = "airflow"
USER = "airflow"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
#: an idle backend publishes its statistics within 10 s (PGSTAT_IDLE_INTERVAL); a little more
STATS_SETTLE = 11.5

#: the tables the report names; every table's counts are kept in the JSON
KEY_TABLES = (
    "task_instance",
    "trigger",
    "xcom",
    "task_state_store",
    "dag_run",
    "job",
    "task_instance_history",
    "rendered_task_instance_fields",
    "log",
)


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path:
    """The newest Debian PostgreSQL's binaries (``/usr/local/bin/pg_ctl`` & co. link there, when present)."""
    found = sorted(
        (p for p in DEBIAN_PREFIX.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresError(
            f"no PostgreSQL server under {DEBIAN_PREFIX}: install Debian's `postgresql` "
            "(make system-packages does, as root)"
        )
    return found[-1]


def server_version() -> str:
    """Like ``postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)``."""
    try:
        out = subprocess.run(
            [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError, PostgresError):
        return "unknown"
    return out.stdout.strip()


@dataclass(frozen=True)
class TableCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    def __sub__(self, other: TableCounts) -> TableCounts:
        return TableCounts(
            self.inserted - other.inserted, self.updated - other.updated, self.deleted - other.deleted
        )

    @property
    def written(self) -> int:
        """Rows inserted or updated (what the proposal means by the load writes put on the DB)."""
        return self.inserted + self.updated


@dataclass(frozen=True)
class DbStats:
    """Cumulative counters of the database at one moment."""

    at: float
    commits: int
    rollbacks: int
    total: TableCounts
    wal_bytes: int
    tables: dict[str, TableCounts] = field(default_factory=dict)

    @property
    def transactions(self) -> int:
        return self.commits + self.rollbacks


@dataclass(frozen=True)
class DbLoad:
    """What one window wrote: the difference of two :class:`DbStats`, less the idle background if given."""

    seconds: float
    transactions: float
    inserted: float
    updated: float
    deleted: float
    wal_bytes: float
    tables: dict[str, dict[str, float]]

    @property
    def written(self) -> float:
        return self.inserted + self.updated

    @classmethod
    def between(cls, before: DbStats, after: DbStats, background: DbLoad | None = None) -> DbLoad:
        seconds = after.at - before.at
        total = after.total - before.total
        tables: dict[str, dict[str, float]] = {}
        for name in sorted(set(after.tables) | set(before.tables)):
            diff = after.tables.get(name, TableCounts()) - before.tables.get(name, TableCounts())
            tables[name] = {"inserted": diff.inserted, "updated": diff.updated, "deleted": diff.deleted}
        load = cls(
            seconds=seconds,
            transactions=after.transactions - before.transactions,
            inserted=total.inserted,
            updated=total.updated,
            deleted=total.deleted,
            wal_bytes=after.wal_bytes - before.wal_bytes,
            tables=tables,
        )
        return load.minus(background) if background is not None else load

    def rate(self) -> DbLoad:
        """Per second: the background a deployment writes while idle."""
        return self.scaled(1.0 / self.seconds, seconds=1.0)

    def scaled(self, factor: float, *, seconds: float | None = None) -> DbLoad:
        return DbLoad(
            seconds=self.seconds if seconds is None else seconds,
            transactions=self.transactions * factor,
            inserted=self.inserted * factor,
            updated=self.updated * factor,
            deleted=self.deleted * factor,
            wal_bytes=self.wal_bytes * factor,
            tables={name: {k: v * factor for k, v in counts.items()} for name, counts in self.tables.items()},
        )

    def minus(self, rate: DbLoad, seconds: float | None = None) -> DbLoad:
        """This window less ``rate`` (per second, see :meth:`rate`) over ``seconds`` (its whole
        length by default).

        Table by table, never below zero, and the totals are the sums of the tables' net counts:
        a table the idle deployment writes cannot take anything from one it does not.
        """
        idle = rate.scaled(self.seconds if seconds is None else max(0.0, seconds))
        tables = {
            name: {
                key: max(0.0, value - idle.tables.get(name, {}).get(key, 0.0))
                for key, value in counts.items()
            }
            for name, counts in self.tables.items()
        }
        return DbLoad(
            seconds=self.seconds,
            transactions=max(0.0, self.transactions - idle.transactions),
            inserted=sum(counts["inserted"] for counts in tables.values()),
            updated=sum(counts["updated"] for counts in tables.values()),
            deleted=sum(counts["deleted"] for counts in tables.values()),
            wal_bytes=max(0.0, self.wal_bytes - idle.wal_bytes),
            tables=tables,
        )

    def per(self, calls: int, unit: int = 1000) -> DbLoad:
        """Per ``unit`` calls."""
        return self.scaled(unit / calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "transactions": self.transactions,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "wal_bytes": self.wal_bytes,
            "tables": {name: counts for name, counts in self.tables.items() if any(counts.values())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DbLoad:
        return cls(**data)


class PostgresServer:
    """One throwaway cluster with one database for Airflow; ``start()``, ``stats()``, ``stop()``."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.directory = Path(tempfile.mkdtemp(prefix="airflow-iterate-bench-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_loopback_port()
        self.password = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.directory.chmod(0o700)

    # -- lifecycle --------------------------------------------------------------------------------

    def _as_server_user(self) -> dict[str, Any]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if self._run_as is None:
            return {"env": env}
        entry = pwd.getpwnam(self._run_as)
        env["HOME"] = str(self.directory)
        return {"env": env, "user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self) -> None:
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        with self.log_path.open("wb") as log:
            if self._run_as is not None:
                os.chown(self.log_path, pwd.getpwnam(self._run_as).pw_uid, -1)
            initdb = subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "--pgdata",
                    str(self.data),
                    "--username",
                    USER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",  # a throwaway cluster: nothing to make durable before it starts
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                timeout=120,
                check=False,
                **self._as_server_user(),
            )
        pwfile.unlink()
        if initdb.returncode != 0:
            raise PostgresError(f"initdb failed (exit {initdb.returncode}):\n{self.log_tail()}")
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                # Room for every component's pool and the task processes of a busy deployment.
                "-c",
                "max_connections=200",
                # Counts per table (on by default; said so because the report depends on it).
                "-c",
                "track_counts=on",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.directory,
            # Its own group: a Ctrl-C meant for the benchmark must not stop the DB under a row.
            start_new_session=True,
            **self._as_server_user(),
        )
        log.close()
        self._wait_ready()
        conn = self._connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        finally:
            conn.close()

    def _wait_ready(self) -> None:
        import psycopg2

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise PostgresError(f"postgres exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                self._connect("postgres").close()
                return
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresError(f"postgres not ready after {START_TIMEOUT:.0f} s: {exc}") from exc
            time.sleep(0.2)

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: disconnect clients, checkpoint, exit.
            process.send_signal(2)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def pid(self) -> int:
        """The postmaster's pid (its backends are its children)."""
        if self._process is None or self._process.poll() is not None:
            raise PostgresError("postgres is not running")
        return self._process.pid

    def wait_no_clients(self, timeout: float = 30.0) -> None:
        """Until no client but this one is connected to the database: every backend that served
        a finished process has ended, and published its statistics on the way out."""
        deadline = time.monotonic() + timeout
        while True:
            conn = self._connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (DATABASE,),
                    )
                    (others,) = cur.fetchone()
            finally:
                conn.close()
            if others == 0 or time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "<no log>"

    # -- use --------------------------------------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        """Airflow's metadata DB URL (psycopg2; Airflow derives asyncpg's URL for its async engine)."""
        return f"postgresql+psycopg2://{USER}:{self.password}@{LOOPBACK}:{self.port}/{DATABASE}"

    def environment(self) -> dict[str, str]:
        return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sqlalchemy_url}

    def _connect(self, database: str = DATABASE) -> Any:
        import psycopg2

        conn = psycopg2.connect(
            host=LOOPBACK,
            port=self.port,
            user=USER,
            password=self.password,
            dbname=database,
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn

    def stats(self) -> DbStats:
        """The database's cumulative counters now (one connection, closed again)."""
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted "
                    "FROM pg_stat_database WHERE datname = %s",
                    (DATABASE,),
                )
                commits, rollbacks, inserted, updated, deleted = cur.fetchone()
                cur.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
                tables = {name: TableCounts(i, u, d) for name, i, u, d in cur.fetchall()}
                cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
                (wal,) = cur.fetchone()
        finally:
            conn.close()
        return DbStats(
            at=time.monotonic(),
            commits=commits,
            rollbacks=rollbacks,
            total=TableCounts(inserted, updated, deleted),
            wal_bytes=int(wal),
            tables=tables,
        )

    def settled_stats(self, settle: float = STATS_SETTLE) -> DbStats:
        """The counters once every backend that was busy until now has published its own."""
        time.sleep(settle)
        return self.stats()
