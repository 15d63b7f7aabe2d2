"""What an :class:`SFTPPool` reports about itself: snapshots, and the running totals behind them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Counters", "PoolStatistics"]


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of an :class:`SFTPPool`; cheap, and safe to take from any thread."""

    conn_id: str
    #: SSH connections open now (including ones retiring after ``max_lifetime``)
    connections: int
    #: SFTP sessions open now, over all connections
    sessions: int
    #: connections and sessions being opened now
    opening: int
    #: borrowers holding a client now
    in_use: int
    #: open connections with no borrower
    idle: int
    #: borrowers queued for a client now
    waiting: int
    #: connections opened over the pool's life
    opened: int
    #: checkouts served by a session that had served an earlier one
    reused: int
    #: connections dropped as broken (transport error, lost, failed health check)
    discarded: int
    #: connections closed after ``idle_timeout`` or ``max_lifetime``
    expired: int
    #: checkouts that had to queue
    waits: int
    #: checkouts over the pool's life
    acquired: int
    health_checks: int
    connect_failures: int


@dataclass
class Counters:
    """A pool's totals over its life, counted where each event happens: by the pool (checkouts,
    waits, connections opened) and by its holders (health checks, connections dropped or expired).
    """

    opened: int = 0
    reused: int = 0
    discarded: int = 0
    expired: int = 0
    waits: int = 0
    acquired: int = 0
    health_checks: int = 0
