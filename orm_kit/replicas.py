"""One database object over a PostgreSQL primary and its streaming replicas, with read-your-writes.

    import orm_kit
    db = orm_kit.connect("postgresql+pool://app:secret@primary/platform",
                         replicas=["postgresql+pool://app:secret@replica-1/platform?max_lag_seconds=2"])
    # or only configuration: ORM_KIT_DATABASE_URL=postgresql+pool://...primary...
    #                        ORM_KIT_REPLICA_URLS="postgresql+pool://...replica-1... postgresql+pool://...replica-2..."
    services = orm_kit.ServiceRepository(db)
    svc = services.create(name="checkout-api", tier="critical", owner=team)   # the primary
    services.get(svc.id)            # a replica that has replayed that create, else the primary
    token = db.session_token()      # "0/3000148": hand it on to the next request, job or process...
    db.observe(token)               # ...whose reads then see at least that write
    with db.primary(): ...          # every read in the block goes to the primary
    with db.replica(): ...          # reads may miss this session's writes (still within the lag bound)
    db.replica_status()             # [ReplicaStatus(name='app@replica-1/platform', healthy=True, ...)]

Models and repositories bind to ``db`` as to any database: the routing happens where peewee executes
a statement (``Database.execute`` / ``execute_sql``), so nothing above it changes.

**The primary** gets every statement except a plain read outside a transaction: writes and DDL, raw
``db.execute_sql()`` (whatever it holds), ``SELECT ... FOR UPDATE``/``FOR SHARE``, reads calling
functions with effects (advisory locks, ``nextval``, ``set_config``: ``pg_advisory_lock()`` *succeeds*
on a standby, and would lock nothing that matters), every statement inside a transaction
(``transaction()``, ``db.atomic()``, ``manual_commit()``: a transaction's reads must see its writes and
one snapshot), and everything in a :meth:`~ReplicatedDatabase.primary` block. Migrations and seed
loads run in transactions; the ``orm-kit`` command opens the primary URL alone anyway.

**A replica** gets the other reads (peewee ``SELECT`` queries, and ``db.execute_read_sql()``, which
repositories use for reads by key) when one is *healthy*: reachable, still a standby
(``pg_is_in_recovery()``: a promoted one is a primary of its own now), replay not paused, and within
its lag bound (``max_lag_bytes`` of WAL behind the primary's current position, and ``max_lag_seconds``
since the primary was at the position the replica has replayed, both measured from the primary's LSN).
Health is probed lazily, by whichever thread reads when the last probe is older than
``probe_interval``, and cached meanwhile. A thread keeps to one replica while it stays healthy, so its
reads never go back in time by switching to a replica further behind. With no healthy replica, reads
go to the primary.

**Read-your-writes.** A session is a thread (peewee keeps connections, transactions and this state per
thread). After the session writes, its token is the primary's WAL insert position
(``pg_current_wal_insert_lsn()``, read lazily: once, before the session's next replica read), and a
replica serves the session only once ``pg_last_wal_replay_lsn()`` there has reached it (re-read from
the replica when the cached position is behind); otherwise the primary answers. Replaying a commit
record makes the commit visible to every later snapshot on the standby, so no read after a write can
miss it. ``session_token()`` exports the token as text (PostgreSQL's LSN notation), ``observe(token)``
takes one in, from another thread, request or process.

**Failures.** A read a replica fails because it went away (connection lost, shutting down), because a
recovery conflict cancelled it (SQLSTATE 40001 on a standby), because it needs the primary after all
(25006, read-only), or because the replica has not replayed a new table or column yet (42P01, 42703),
runs again on the primary; an unreachable replica is left alone for ``down_backoff`` seconds. A write
the primary refuses as read-only while being a hot standby (25006 after a failover) raises
:class:`~orm_kit.errors.PrimaryReadOnlyError`.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee

from orm_kit import db as dbmod
from orm_kit._shown import shown
from orm_kit.backends import PostgresDatabase
from orm_kit.bounds import check_count, check_seconds
from orm_kit.dialect import unwrap
from orm_kit.errors import (
    ConfigurationError,
    OrmKitError,
    PoolExhaustedError,
    PrimaryReadOnlyError,
    RoutingError,
    first_line,
    sqlstate,
    unchained,
)
from orm_kit.pool import PooledPostgresDatabase, PoolSettings

__all__ = [
    "DEFAULT_MAX_LAG_BYTES",
    "DEFAULT_MAX_LAG_SECONDS",
    "REPLICA_ENV_VAR",
    "PooledReplicatedDatabase",
    "Replica",
    "ReplicaStatus",
    "ReplicatedDatabase",
    "RoutingStats",
    "format_lsn",
    "has_replayed",
    "observe",
    "open_replicated",
    "parse_lsn",
    "primary",
    "replica",
    "replica_urls",
    "session_token",
]

REPLICA_ENV_VAR = "ORM_KIT_REPLICA_URLS"
DEFAULT_MAX_LAG_SECONDS = 5.0
DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024  # one WAL segment
MAX_LAG_BYTES = 2**63 - 1  # a WAL position is 64 bits
REPLICA_CONNECT_TIMEOUT = 3  # seconds; a replica that does not answer must not hold a read up for long
_LAG_OPTIONS = ("max_lag_seconds", "max_lag_bytes")

_PRIMARY, _REPLICA = "primary", "replica"

# What may go to a replica: a statement starting with SELECT or WITH, none of whose words (outside
# quoted names and string literals) writes or locks, and that calls no function with an effect.
_READ_START = re.compile(r"^[\s(]*(SELECT|WITH)\b", re.IGNORECASE)
_QUOTED = re.compile(r"\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'")
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|INTO|SHARE|LOCK|NOWAIT)\b", re.IGNORECASE)
_EFFECTS = re.compile(
    r"\b(pg_(try_)?advisory_\w+|nextval|setval|set_config|pg_notify|txid_current\w*|pg_current_xact_id\w*"
    r"|pg_current_wal\w*|pg_switch_wal|pg_create_\w+|pg_drop_\w+|pg_terminate_backend|pg_cancel_backend"
    r"|pg_reload_conf|lo_\w+|dblink\w*)\s*\(", re.IGNORECASE)
# Raw SQL that changes nothing the session could read back elsewhere: no token needed after it.
_NO_WRITE = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|START|COMMIT|END|SHOW|SET\s+LOCAL)\b", re.IGNORECASE)

# A replica read failing with one of these runs again on the primary.
_CONFLICT = {"40001": "cancelled by a recovery conflict", "40P01": "cancelled by a recovery conflict (deadlock)"}
_NEEDS_PRIMARY = {"25006": "it needs the primary (read-only on a standby)",
                  "42P01": "the replica has not replayed that table yet",
                  "42703": "the replica has not replayed that column yet",
                  "42883": "the replica has not replayed that function yet"}
_GONE = ("57P01", "57P02", "57P03")  # shutting down, crashed, cannot connect now

_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def parse_lsn(text: str) -> int:
    """A PostgreSQL LSN (``16/B374D848``) as a number; :class:`RoutingError` for anything else."""
    found = _LSN.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise RoutingError(f"read-your-writes token {shown(text, 40)} is not one session_token() issued; "
                           "expected a PostgreSQL LSN such as '16/B374D848' (pass the token on unchanged)")
    return (int(found.group(1), 16) << 32) | int(found.group(2), 16)


def format_lsn(lsn: int) -> str:
    """A number as PostgreSQL writes an LSN: ``16/B374D848``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


# The longest WAL page header (a segment's first page); no WAL record fits in so few bytes after one.
_PAGE_HEADER_MAX = 40


def has_replayed(replay_lsn: int, token: int, wal_block_size: int = 8192) -> bool:
    """Whether a standby at ``replay_lsn`` has replayed every record written before ``token`` was taken.

    ``pg_current_wal_insert_lsn()`` on a primary whose last record ended exactly at a WAL page boundary
    points past the next page's header, where no record ends; a standby stops at the boundary. Any
    record written after the boundary would end more than :data:`_PAGE_HEADER_MAX` bytes past it.
    """
    return replay_lsn >= token or (replay_lsn % wal_block_size == 0 and token - replay_lsn <= _PAGE_HEADER_MAX)


def _is_plain_read(sql: str) -> bool:
    if not _READ_START.match(sql):
        return False
    bare = _QUOTED.sub("''", sql)
    return not _WRITES.search(bare) and not _EFFECTS.search(bare)


def replica_urls(environ: Mapping[str, str] | None = None) -> list[str]:
    """The replica URLs in ``ORM_KIT_REPLICA_URLS``: separated by spaces, newlines, or commas before a scheme.

    A comma inside a URL (libpq's multi-host ``host1,host2``) stays part of it.
    """
    text = (os.environ if environ is None else environ).get(REPLICA_ENV_VAR, "")
    return [url for url in re.split(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)", text) if url]


@dataclass(frozen=True)
class Replica:
    """A replica's database (usually opened with ``connect=False``), its name in messages and its lag bound."""

    db: peewee.PostgresqlDatabase
    name: str
    max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS
    max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES
    url: str = field(default="", repr=False)  # only to mask its password in driver messages

    def __post_init__(self) -> None:
        check_seconds(self.max_lag_seconds, f"replica {self.name!r} max_lag_seconds")
        check_count(self.max_lag_bytes, f"replica {self.name!r} max_lag_bytes", low=1, high=MAX_LAG_BYTES)


@dataclass(frozen=True)
class ReplicaStatus:
    """What the last probe (or failed read) found out about a replica; ``problem`` is None when healthy."""

    name: str
    healthy: bool
    problem: str | None
    replay_lsn: str | None
    lag_bytes: int | None
    lag_seconds: float | None
    checked_seconds_ago: float | None


@dataclass(frozen=True)
class RoutingStats:
    """Counts of statements by where they ran, since the database was opened (for metrics and tests)."""

    replica_reads: int = 0  # plain reads a replica answered
    primary_reads: int = 0  # plain reads the primary answered (the three below included)
    primary_statements: int = 0  # everything else: writes, DDL, locking reads, raw SQL
    retried_on_primary: int = 0  # reads a replica failed (conflict, gone, behind on the schema)
    behind_session: int = 0  # reads no healthy replica had replayed the session's writes for
    no_healthy_replica: int = 0  # reads with every replica down, paused, promoted or lagging


class _Tracked:
    """One replica and what is known about it; written under the probe lock or by a failing read."""

    def __init__(self, spec: Replica) -> None:
        self.spec = spec
        self.db = spec.db
        self.problem: str | None = "not checked yet"
        self.replay_lsn = 0
        self.lag_bytes: int | None = None
        self.lag_seconds: float | None = None
        self.checked_at: float | None = None
        self.down_until = 0.0
        self.outages = 0  # how many times it was found unreachable: connections from before are stale

    def query(self, session: _Session, sql: str, params: Any = None) -> Any:
        """Run ``sql`` on this replica over the calling thread's connection (a fresh one after an outage)."""
        if session.outages.get(self, 0) != self.outages:
            # Opened before the replica last went away: likely dead even if the replica is back.
            with contextlib.suppress(Exception):
                self.db.close()
            session.outages[self] = self.outages
        return self.db.execute_sql(sql, params)  # type: ignore[no-untyped-call]  # peewee untyped

    def usable(self, now: float) -> bool:
        return self.problem is None and now >= self.down_until


class _Session:
    """A thread's routing state: its read-your-writes token, a write not yet turned into one, its overrides."""

    __slots__ = ("modes", "outages", "pending", "replica", "token")

    def __init__(self) -> None:
        self.token = 0
        self.pending = False
        self.modes: list[str] = []
        self.replica: _Tracked | None = None
        self.outages: dict[_Tracked, int] = {}  # per replica, its outage count when this thread connected


class ReplicatedDatabase(PostgresDatabase):
    """A PostgreSQL primary (this database itself) that sends plain reads to healthy replicas."""

    _state: Any  # peewee's per-thread connection state, missing from the stubs

    def __init__(self, database: str, *, replicas: Sequence[Replica] = (), probe_interval: float = 1.0,
                 down_backoff: float = 5.0, name: str | None = None, **kwargs: Any) -> None:
        for spec in replicas:
            if not isinstance(spec.db, peewee.PostgresqlDatabase):
                raise ConfigurationError(f"replica {spec.name!r} is a {type(spec.db).__name__}; replicas are "
                                         "PostgreSQL streaming standbys of the primary")
        check_seconds(probe_interval, "probe_interval")
        check_seconds(down_backoff, "down_backoff", zero="try a replica that failed again at once")
        self.name = name or database
        self.probe_interval = probe_interval
        self.down_backoff = down_backoff
        self._replicas = [_Tracked(spec) for spec in replicas]
        self._probe_lock = threading.Lock()
        self._probed_at: float | None = None
        self._samples: list[tuple[float, int]] = []  # (monotonic time, primary LSN), first sighting of each LSN
        self._wal_block = 8192  # the cluster's wal_block_size, read with every LSN
        self._stats_lock = threading.Lock()
        self._stats: dict[str, int] = dict.fromkeys(RoutingStats.__dataclass_fields__, 0)
        super().__init__(database, **kwargs)

    # --- peewee's entry points ---------------------------------------------------------------------

    def execute(self, query: Any, **context_options: Any) -> Any:
        """Compile ``query`` and run it where it belongs: a plain SELECT may go to a replica."""
        ctx = self.get_sql_context(**context_options)
        sql, params = ctx.sql(query).query()  # type: ignore[no-untyped-call]  # untyped in the stubs
        if isinstance(query, peewee.SelectBase) and not getattr(query, "_for_update", None):
            return self._read(sql, params)
        return self._on_primary(sql, params, wrote=True)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        """Raw SQL: always on the primary, and (unless it is plainly a read) a write for read-your-writes."""
        if _is_plain_read(sql):
            return self._on_primary(sql, params, wrote=False, read=True)
        return self._on_primary(sql, params, wrote=not _NO_WRITE.match(sql))

    def execute_read_sql(self, sql: str, params: Any = None) -> Any:
        """Raw SQL the caller knows to be a plain read: it may go to a replica (else as :meth:`execute_sql`)."""
        return self._read(sql, params)

    def close(self) -> bool:
        """Close (or give back to its pool) this thread's connection to the primary and to each replica."""
        try:
            return bool(super().close())
        finally:
            if not self.in_transaction():
                for replica in self._replicas:
                    if not replica.db.is_closed():
                        with contextlib.suppress(peewee.PeeweeException, OrmKitError):
                            replica.db.close()

    # --- routing -----------------------------------------------------------------------------------

    def _session(self) -> _Session:
        session: _Session | None = getattr(self._state, "orm_kit_routing", None)
        if session is None:
            session = self._state.orm_kit_routing = _Session()
        return session

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._stats[name] += 1

    def _read(self, sql: str, params: Any) -> Any:
        if not _is_plain_read(sql):
            return self._on_primary(sql, params, wrote=True)
        session = self._session()
        mode = session.modes[-1] if session.modes else None
        if not self._replicas or self.in_transaction() or mode == _PRIMARY:
            return self._on_primary(sql, params, wrote=False, read=True)
        replica = self._choose(session, mode == _REPLICA)
        if replica is None:
            return self._on_primary(sql, params, wrote=False, read=True)
        try:
            cursor = replica.query(session, sql, params)
        except (peewee.DatabaseError, peewee.InterfaceError, PoolExhaustedError) as exc:
            if not self._replica_failed(replica, exc):
                raise
            self._count("retried_on_primary")
            return self._on_primary(sql, params, wrote=False, read=True)
        self._count("replica_reads")
        return cursor

    def _on_primary(self, sql: str, params: Any, *, wrote: bool, read: bool = False) -> Any:
        self._count("primary_reads" if read else "primary_statements")
        try:
            cursor = super().execute_sql(sql, params)
        except peewee.DatabaseError as exc:
            self._raise_if_standby(exc)
            raise
        if wrote:
            self._session().pending = True
        return cursor

    def _raise_if_standby(self, exc: peewee.DatabaseError) -> None:
        """:class:`PrimaryReadOnlyError` when ``exc`` is a read-only refusal (25006, 55000) by a standby."""
        if sqlstate(exc) not in ("25006", "55000"):
            return
        standby = self._primary_is_standby()
        if standby:
            raise PrimaryReadOnlyError(
                f"the primary {self.name} refused a statement as read-only: {standby} (a failover? point the "
                "database URL at the new primary, or list every server in a multi-host URL with "
                "target_session_attrs=read-write, then reconnect)") from exc

    def _primary_is_standby(self) -> str | None:
        """Why the primary's server is read-only, if it is (not a READ ONLY transaction of the caller's)."""
        conn: Any = None if self.is_closed() else self._state.conn
        info = getattr(conn, "info", None)
        if info is not None:
            if info.parameter_status("in_hot_standby") == "on":
                return "it is a hot standby (in_hot_standby = on)"
            if info.parameter_status("default_transaction_read_only") == "on":
                return "it has default_transaction_read_only = on"
        if conn is not None and not self.in_transaction():  # e.g. behind PgBouncer, which forwards neither
            with contextlib.suppress(Exception):
                if super().execute_sql("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return "it is in recovery (pg_is_in_recovery() is true)"
        return None

    def _choose(self, session: _Session, stale_ok: bool) -> _Tracked | None:
        now = time.monotonic()
        self._probe_if_due(now)
        healthy = [r for r in self._replicas if r.usable(now)]
        if not healthy:
            self._count("no_healthy_replica")
            return None
        if session.replica in healthy:
            healthy.remove(session.replica)
            healthy.insert(0, session.replica)
        else:
            random.shuffle(healthy)  # spread threads over the replicas; each then keeps to its own
        need = 0 if stale_ok else self._floor(session)
        chosen = next((r for r in healthy if has_replayed(r.replay_lsn, need, self._wal_block)), None)
        if chosen is None:
            for replica in healthy:
                replayed = self._replayed(replica, session)
                if replayed is not None and has_replayed(replayed, need, self._wal_block):
                    chosen = replica
                    break
        if chosen is None:
            self._count("behind_session")
            return None
        session.replica = chosen
        return chosen

    def _floor(self, session: _Session) -> int:
        """The LSN a replica must have replayed to serve this session (the pending write's turned into one)."""
        if session.pending:
            lsn = self._primary_lsn()
            session.token = max(session.token, lsn)
            session.pending = False
        return session.token

    def _primary_lsn(self) -> int:
        try:
            text, block = super().execute_sql(
                "SELECT pg_current_wal_insert_lsn(), current_setting('wal_block_size')::int").fetchone()
        except peewee.DatabaseError as exc:
            self._raise_if_standby(exc)
            raise
        self._wal_block = int(block)
        return parse_lsn(str(text))

    def _replayed(self, replica: _Tracked, session: _Session) -> int | None:
        """The replica's replay position, read now (None, and the replica marked, when it cannot answer)."""
        try:
            lsn, recovering = replica.query(session, "SELECT pg_last_wal_replay_lsn(), pg_is_in_recovery()").fetchone()
        except (peewee.DatabaseError, peewee.InterfaceError, PoolExhaustedError) as exc:
            self._replica_failed(replica, exc)
            return None
        if not recovering or lsn is None:
            replica.problem = "not a standby: pg_is_in_recovery() is false (promoted, or not a replica)"
            return None
        replica.replay_lsn = parse_lsn(str(lsn))
        return replica.replay_lsn

    def _replica_failed(self, replica: _Tracked, exc: BaseException) -> bool:
        """Record why ``replica`` failed a read; True when the read should run again on the primary."""
        state = sqlstate(exc)
        if state in _CONFLICT or state in _NEEDS_PRIMARY:
            return True
        gone = (state in _GONE or (state or "").startswith("08") or isinstance(exc, PoolExhaustedError)
                or (state is None and isinstance(exc, peewee.OperationalError | peewee.InterfaceError)))
        if not gone:
            return False
        self._mark_down(replica, first_line(exc, typed=False))
        return True

    def _mark_down(self, replica: _Tracked, reason: str) -> None:
        replica.problem = f"unreachable: {dbmod.scrub(reason, replica.spec.url)}"
        replica.down_until = time.monotonic() + self.down_backoff
        replica.outages += 1
        with contextlib.suppress(Exception):  # the connection is gone anyway; drop it (or its pool slot)
            replica.db.close()

    # --- health ------------------------------------------------------------------------------------

    def _probe_if_due(self, now: float) -> None:
        if self._probed_at is not None and now - self._probed_at < self.probe_interval:
            return
        # One thread probes; the others go on with what the last probe found (the very first waits).
        if not self._probe_lock.acquire(blocking=self._probed_at is None):
            return
        try:
            if self._probed_at is None or time.monotonic() - self._probed_at >= self.probe_interval:
                self._probe()
        finally:
            self._probe_lock.release()

    def _probe(self) -> None:
        # The primary away: judge lag against its last known position, and keep serving reads.
        with contextlib.suppress(peewee.DatabaseError, peewee.InterfaceError, OrmKitError):
            self._sample(self._primary_lsn())
        session = self._session()
        now = time.monotonic()
        for replica in self._replicas:
            if now < replica.down_until:
                continue
            try:
                recovering, lsn, paused = replica.query(
                    session, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), "
                    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END").fetchone()
            except (peewee.DatabaseError, peewee.InterfaceError, PoolExhaustedError) as exc:
                self._mark_down(replica, first_line(exc, typed=False))
                replica.checked_at = now
                continue
            replica.checked_at = now
            replica.replay_lsn = parse_lsn(str(lsn)) if lsn is not None else 0
            self._judge(replica, bool(recovering), bool(paused), now)
        self._probed_at = time.monotonic()

    def _sample(self, lsn: int) -> None:
        now = time.monotonic()
        if not self._samples or lsn > self._samples[-1][1]:
            self._samples.append((now, lsn))
        window = max(60.0, 2 * max((r.spec.max_lag_seconds for r in self._replicas), default=0.0))
        while len(self._samples) > 1 and (now - self._samples[0][0] > window or len(self._samples) > 1024):
            self._samples.pop(0)

    def _judge(self, replica: _Tracked, recovering: bool, paused: bool, now: float) -> None:
        spec = replica.spec
        if not recovering:
            replica.lag_bytes = replica.lag_seconds = None
            replica.problem = "not a standby: pg_is_in_recovery() is false (promoted, or not a replica)"
            return
        primary = self._samples[-1][1] if self._samples else replica.replay_lsn
        replica.lag_bytes = max(0, primary - replica.replay_lsn)
        # Seconds: since the primary first stood at a position the replica has not replayed yet.
        behind = next((t for t, lsn in self._samples if lsn > replica.replay_lsn), None)
        replica.lag_seconds = 0.0 if behind is None else max(0.0, now - behind)
        if paused:
            replica.problem = "replay is paused (pg_wal_replay_pause())"
        elif replica.lag_bytes > spec.max_lag_bytes:
            replica.problem = f"lagging {replica.lag_bytes} bytes behind the primary (bound: {spec.max_lag_bytes})"
        elif replica.lag_seconds > spec.max_lag_seconds:
            replica.problem = (f"lagging {replica.lag_seconds:.1f}s behind the primary "
                               f"(bound: {spec.max_lag_seconds:g}s)")
        else:
            replica.problem = None

    # --- the public face ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def primary(self) -> Iterator[None]:
        """Every read in the block (on this thread) goes to the primary."""
        session = self._session()
        session.modes.append(_PRIMARY)
        try:
            yield
        finally:
            session.modes.pop()

    @contextlib.contextmanager
    def replica(self) -> Iterator[None]:
        """Reads in the block may go to a healthy replica that has not replayed this session's writes yet.

        The lag bound still holds, and with no healthy replica the primary answers. A transaction opened
        in the block still runs on the primary; opening the block inside one is a :class:`RoutingError`.
        """
        if self.in_transaction():
            raise RoutingError(
                "db.replica() inside a transaction: the transaction's reads must see its own writes and one "
                "snapshot, so they stay on the primary; open the replica() block outside the transaction")
        session = self._session()
        session.modes.append(_REPLICA)
        try:
            yield
        finally:
            session.modes.pop()

    def session_token(self) -> str | None:
        """This session's read-your-writes token (``16/B374D848``), or None when it has written nothing."""
        session = self._session()
        if session.pending and self.in_transaction():
            raise RoutingError(
                "session_token() inside a transaction that wrote: the token must name its COMMIT; take the "
                "token after the transaction block ends")
        token = self._floor(session)
        return format_lsn(token) if token else None

    def observe(self, token: str | None) -> None:
        """From now on this session's reads see at least what ``token`` (from :meth:`session_token`) names."""
        if token:
            session = self._session()
            session.token = max(session.token, parse_lsn(token))

    def replica_status(self, *, refresh: bool = False) -> list[ReplicaStatus]:
        """Each replica's health as last probed (``refresh``: probe now)."""
        if refresh:
            with self._probe_lock:
                self._probe()
        now = time.monotonic()
        return [ReplicaStatus(
            name=r.spec.name, healthy=r.usable(now),
            problem=r.problem if r.problem or r.usable(now) else "left alone after a failure",
            replay_lsn=format_lsn(r.replay_lsn) if r.replay_lsn else None, lag_bytes=r.lag_bytes,
            lag_seconds=r.lag_seconds, checked_seconds_ago=None if r.checked_at is None else now - r.checked_at,
        ) for r in self._replicas]

    def routing_stats(self) -> RoutingStats:
        """How many statements ran where, so far."""
        with self._stats_lock:
            return RoutingStats(**self._stats)


class PooledReplicatedDatabase(ReplicatedDatabase, PooledPostgresDatabase):  # type: ignore[misc]  # see pool.py
    """A pooled primary (``postgresql+pool://``) with replicas."""

    def close_all(self) -> None:
        """Close every connection of the primary's pool and of the replicas' pools (at shutdown)."""
        super().close_all()  # type: ignore[no-untyped-call]  # playhouse.pool is untyped
        for replica in self._replicas:
            close_all = getattr(replica.db, "close_all", None)
            if close_all is not None:
                close_all()


# The same calls on any database, so application code need not know whether replicas are configured.

def _replicated(db: peewee.Database) -> ReplicatedDatabase | None:
    real = unwrap(db)
    return real if isinstance(real, ReplicatedDatabase) else None


def session_token(db: peewee.Database) -> str | None:
    """``db``'s read-your-writes token for this thread (None without replicas, or before any write)."""
    replicated = _replicated(db)
    return replicated.session_token() if replicated else None


def observe(db: peewee.Database, token: str | None) -> None:
    """Make this thread's reads on ``db`` see at least ``token`` (nothing to do without replicas)."""
    replicated = _replicated(db)
    if replicated:
        replicated.observe(token)
    elif token:
        parse_lsn(token)  # a bad token is refused the same with or without replicas


def primary(db: peewee.Database) -> contextlib.AbstractContextManager[None]:
    """A block whose reads go to the primary (without replicas, everything does)."""
    replicated = _replicated(db)
    return replicated.primary() if replicated else contextlib.nullcontext()


def replica(db: peewee.Database) -> contextlib.AbstractContextManager[None]:
    """A block whose reads may lag this thread's writes (without replicas, nothing changes)."""
    replicated = _replicated(db)
    return replicated.replica() if replicated else contextlib.nullcontext()


def _lag_bound(parsed: dbmod.ParsedURL, name: str, default: float) -> float:
    value = parsed.extras.get(name, default)
    try:
        # NaN compared false with every lag: a replica any distance behind counted as healthy.
        if name == "max_lag_bytes":
            return float(check_count(value, name, low=1, high=MAX_LAG_BYTES))
        return check_seconds(value, name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"replica URL {parsed.shown!r}: {exc}") from None


@unchained
def open_replicated(primary_url: str, replica_urls: Sequence[str], *, pool: PoolSettings | None = None,
                    max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS, max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES,
                    probe_interval: float = 1.0, connect: bool = True) -> ReplicatedDatabase:
    """A :class:`ReplicatedDatabase` for a PostgreSQL primary URL and its replicas' URLs.

    A replica URL may carry ``max_lag_seconds`` and ``max_lag_bytes`` (taken out before the driver sees
    them) to override the bounds given here. ``pool`` applies to every server whose URL has no ``+pool``.
    With ``connect`` the primary's connection is opened and checked; replicas are reached lazily.
    """
    parsed = dbmod.parse_url(primary_url)
    if parsed.family != "postgres":
        where = ("CockroachDB replicates by itself (use follower reads: AS OF SYSTEM TIME)"
                 if parsed.family == "cockroach" else "SQLite has no replicas")
        raise ConfigurationError(f"read replicas need a PostgreSQL primary, not {parsed.shown!r}: {where}")
    specs = []
    for url in replica_urls:
        rparsed = dbmod.parse_url(url, extras=_LAG_OPTIONS)
        if rparsed.family != "postgres":
            raise ConfigurationError(f"replica URL {rparsed.shown!r}: a replica is a PostgreSQL streaming standby "
                                     "(postgresql:// or postgresql+pool://)")
        if "connect_timeout" not in _query_names(url):
            rparsed.driver["connect_timeout"] = REPLICA_CONNECT_TIMEOUT
        arguments = dbmod.database_arguments(rparsed, pool)
        replica_class = PooledPostgresDatabase if "pool_name" in arguments else PostgresDatabase
        replica_db = replica_class(rparsed.database, **arguments)
        dbmod.mark_pooler(replica_db, rparsed)
        specs.append(Replica(replica_db, dbmod.pool_name(rparsed),
                             _lag_bound(rparsed, "max_lag_seconds", max_lag_seconds),
                             int(_lag_bound(rparsed, "max_lag_bytes", max_lag_bytes)), url))
    arguments = dbmod.database_arguments(parsed, pool)
    cls = PooledReplicatedDatabase if "pool_name" in arguments else ReplicatedDatabase
    db = cls(parsed.database, replicas=specs, probe_interval=probe_interval, name=parsed.shown, **arguments)
    dbmod.mark_pooler(db, parsed)
    if connect:
        dbmod.check_connection(db, primary_url)
    return db


def _query_names(url: str) -> set[str]:
    query = url.partition("?")[2].partition("#")[0]
    return {item.partition("=")[0] for item in query.split("&") if item}
