"""Connection pools: playhouse.pool's, with a name, a typed exhaustion error, and connections that go back clean.

    import orm_kit
    from orm_kit.pool import PoolSettings

    db = orm_kit.connect("postgresql+pool://app:secret@db/platform?max_connections=20&timeout=5&stale_timeout=300")
    db = orm_kit.connect("postgresql://app:secret@db/platform", pool=PoolSettings(max_connections=20))
    with db.connection_context():       # check a connection out for one request; back to the pool at the end
        ...
    db.pool_status()                    # PoolStatus(name='app@db/platform', max_connections=20, in_use=0, idle=1)

A pooled database is still ONE peewee database object that models bind to: ``db.connect()`` checks a
connection out for the calling thread (peewee keeps one per thread), ``db.close()`` gives it back, and
everything in between (transactions, ``on_commit``) works as without a pool. Call ``db.close()`` (or use
``connection_context()``) at the end of each request or job: a thread that never gives its connection
back keeps it.

Why playhouse.pool and not psycopg_pool: peewee's per-thread connection state and transaction stack
are built around ``connect()``/``close()``, and playhouse.pool hooks in exactly there, without
background threads or another dependency; psycopg_pool would need the same two hooks written around
``getconn``/``putconn``, and its extras (pre-warming, background reconnects) matter little for a
per-process pool, usually in front of a server-side pooler anyway. What playhouse.pool lacks, this
module adds:

* **A typed error.** A checkout that finds every connection in use waits up to ``timeout`` seconds,
  then raises :class:`~orm_kit.errors.PoolExhaustedError` naming the pool and its size (playhouse
  raises a bare ``ValueError`` subclass, or waits for ever with ``timeout=0``, which orm-kit refuses).
* **Clean check-in.** A connection goes back rolled back (if a transaction was left open or failed)
  and reset in one round trip: no leftover ``SET``, role, advisory lock, ``LISTEN``, cursor or
  temporary table for the next borrower. Not ``DISCARD ALL``: that would also drop psycopg's
  prepared statements behind its back ("prepared statement _pg3_1 does not exist"). A connection that
  cannot be reset is closed instead of pooled.
* **Cheap check-out.** playhouse pings every connection it hands out (``SELECT 1``, under the pool's
  lock); here only one idle for more than :data:`PING_AFTER_IDLE` seconds is, or one the server has
  written to while it sat idle (a server ending a session says so, then closes the socket: a poll of
  the socket, no round trip, sees it). The reset at check-in has just proved the others alive.

``stale_timeout`` replaces a connection that old (seconds since it was opened) when it comes back or
is next checked out, so connections follow a failover or a load balancer's changes within that time.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Any

import peewee
from playhouse.pool import MaxConnectionsExceeded, PooledDatabase

from orm_kit._shown import shown
from orm_kit.backends import SESSION_SQL, DriverErrors, UTCSessions
from orm_kit.bounds import check_seconds
from orm_kit.cockroach import CockroachDatabase
from orm_kit.errors import ConfigurationError, PoolExhaustedError

__all__ = [
    "PING_AFTER_IDLE",
    "RESET_SQL",
    "PoolSettings",
    "PoolStatus",
    "PooledCockroachDatabase",
    "PooledPostgresDatabase",
]

PING_AFTER_IDLE = 1.0
# RESET ALL takes TimeZone back to the server's default: orm-kit's sessions run in UTC (orm_kit.backends).
RESET_SQL = ("SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
             f"SELECT pg_advisory_unlock_all(); DISCARD TEMP; {SESSION_SQL}")


@dataclass(frozen=True)
class PoolSettings:
    """Size and timeouts of a connection pool (the same names as the ``+pool`` URL options)."""

    max_connections: int = 20
    timeout: float = 10.0  # seconds a checkout waits for a connection to come back
    stale_timeout: float | None = 300.0  # seconds after which a connection is replaced; None: never

    def __post_init__(self) -> None:
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int) \
                or not 1 <= self.max_connections <= 10_000:
            raise ConfigurationError(f"pool max_connections is {shown(self.max_connections)}; expected a whole "
                                     "number from 1 to 10,000")
        check_seconds(self.timeout, "pool timeout", hint="how long a checkout may wait for a free connection")
        if self.stale_timeout is not None:
            check_seconds(self.stale_timeout, "pool stale_timeout", hint="or None to keep connections however old")


@dataclass(frozen=True)
class PoolStatus:
    """A pool at one moment: its name and size, connections checked out and connections waiting idle."""

    name: str
    max_connections: int
    in_use: int
    idle: int


# playhouse.pool is untyped, and its init() takes pool options PostgresqlDatabase.init() does not.
class _CleanPool(PooledDatabase, DriverErrors, UTCSessions, peewee.PostgresqlDatabase):  # type: ignore[misc]
    """playhouse.pool's pool over a PostgreSQL-protocol database class (mixed in before another one)."""

    reset_sql = RESET_SQL
    _adapter: Any  # peewee's driver adapter and per-thread state, missing from the stubs
    _state: Any

    def __init__(self, database: str, *, pool_name: str, max_connections: int = 20, timeout: float = 10.0,
                 stale_timeout: float | None = 300.0, **kwargs: Any) -> None:
        self.pool_name = pool_name
        self._returned_at: dict[int, float] = {}
        self._unclean: set[int] = set()
        super().__init__(database, max_connections=max_connections, stale_timeout=stale_timeout,  # type: ignore[no-untyped-call]  # peewee untyped
                         timeout=timeout, **kwargs)

    def connect(self, reuse_if_open: bool = False) -> bool:
        """Check a connection out for this thread; :class:`PoolExhaustedError` when none came back in time."""
        try:
            return bool(super().connect(reuse_if_open))  # type: ignore[no-untyped-call]  # peewee untyped
        except MaxConnectionsExceeded as exc:
            if isinstance(exc, PoolExhaustedError):
                raise
            status = self.pool_status()
            raise PoolExhaustedError(
                f"connection pool {self.pool_name!r} is exhausted: all {status.max_connections} connections "
                f"stayed in use for {self._wait_timeout:g}s; return connections with db.close() (or "
                "db.connection_context()) at the end of each request, or raise max_connections (URL option "
                "?max_connections=N)",
                pool=self.pool_name, max_connections=status.max_connections, timeout=float(self._wait_timeout),
            ) from None

    def close(self) -> bool:
        """Give this thread's connection back to the pool, rolled back and reset (closed if it cannot be)."""
        conn = None if self.deferred or self.is_closed() or self.in_transaction() else self._state.conn
        if conn is not None:
            # Here, before peewee takes its database-wide lock for the check-in: the reset is a round trip.
            if self._reset(conn):
                self._returned_at[id(conn)] = time.monotonic()
            else:
                self._unclean.add(id(conn))
        return bool(super().close())

    def _reset(self, conn: Any) -> bool:
        try:
            if conn.closed or self._adapter.txn_status(conn) == self._adapter.txn_unknown:
                return False
            if self._adapter.txn_status(conn) != self._adapter.txn_idle:
                conn.rollback()
            conn.execute(self.reset_sql)
        except Exception:  # noqa: BLE001 - a connection that cannot be reset is not pooled
            return False
        return bool(self._adapter.txn_status(conn) == self._adapter.txn_idle)

    def _can_reuse(self, conn: Any) -> bool:
        # Called under the pool's lock at check-in, after close() reset the connection.
        return bool(not conn.closed and self._adapter.txn_status(conn) == self._adapter.txn_idle)

    def _is_closed(self, conn: Any) -> bool:
        # Called under the pool's lock at check-out.
        returned = self._returned_at.pop(id(conn), None)
        if conn.closed or self._adapter.txn_status(conn) != self._adapter.txn_idle:
            return True
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE and not _readable(conn):
            return False
        return bool(self._adapter.is_connection_closed(conn))  # a SELECT 1 round trip

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        unclean = id(conn) in self._unclean
        self._unclean.discard(id(conn))
        super()._close(conn, close_conn=close_conn or unclean)
        if close_conn or unclean:
            self._returned_at.pop(id(conn), None)

    def pool_status(self) -> PoolStatus:
        """How many connections are checked out and how many wait idle, now."""
        with self._pool_lock:
            return PoolStatus(self.pool_name, int(self._max_connections), len(self._in_use), len(self._connections))


def _readable(conn: Any) -> bool:
    """Whether the server said something to an idle connection: usually that it is closing it (FATAL, EOF)."""
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class PooledPostgresDatabase(_CleanPool):
    """A pooled PostgreSQL database (``postgresql+pool://``)."""


class PooledCockroachDatabase(_CleanPool, CockroachDatabase):  # type: ignore[misc]  # as _CleanPool
    """A pooled CockroachDB database (``cockroachdb+pool://``); reset with ``RESET ALL`` only (not tested here)."""

    reset_sql = f"RESET ALL; {SESSION_SQL}"
