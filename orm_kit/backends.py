"""orm-kit's database classes: what they add to peewee's, for every database orm-kit opens from a URL.

    from orm_kit.backends import PostgresDatabase, SqliteDatabase
    db = PostgresDatabase("platform", host="db", user="app")   # sessions in UTC; a full disk is DiskFullError
    db = SqliteDatabase("platform.db")                          # a full disk is DiskFullError, not "cannot rollback"

**PostgreSQL sessions run in UTC**, whatever the server's or the role's ``TimeZone``. ``timestamptz`` is
stored as an instant but read back in the session's time zone, and psycopg builds a Python ``datetime``
from that local reading: in a session at UTC+14 the instant 9999-12-31 20:00Z reads as the year 10000,
which Python cannot represent, and every query over the table failed ("timestamp too large"). In UTC a
value orm-kit let through (validation refuses instants outside years 1-9999 once in UTC) always reads
back. Each new connection runs ``SET TIME ZONE 'UTC'`` once (a pool's reused connections do not pay it;
its reset puts it back after ``RESET ALL``, :mod:`orm_kit.pool`). A ``SET``, not the ``options=-c
TimeZone=UTC`` startup parameter: PgBouncer refuses unknown startup parameters, and it tracks
``TimeZone`` per client, so the setting follows the client across server connections there.

**A full disk says so.** When SQLite cannot write (``SQLITE_FULL``; also an I/O error or running out of
memory) it rolls the whole transaction back itself, so the ``ROLLBACK`` that peewee then sends failed with
"cannot rollback - no transaction is active", and that error replaced the one that said why. Here a
rollback (or a rollback to a savepoint) that SQLite already made is not made again, and the error that
caused it comes through: a full disk (SQLite's ``SQLITE_FULL``, PostgreSQL's SQLSTATE 53100) is a
:class:`~orm_kit.errors.DiskFullError` naming the database, after which nothing the transaction wrote
remains.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import peewee

from orm_kit.errors import DiskFullError, InvalidQueryError, first_line, sqlstate

__all__ = ["SESSION_SQL", "DriverErrors", "PostgresDatabase", "Savepoint", "SqliteDatabase", "UTCSessions",
           "disk_full"]

SESSION_SQL = "SET TIME ZONE 'UTC'"
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_PG_OUT_OF_RANGE = "22003"


def disk_full(db: peewee.Database, exc: BaseException) -> DiskFullError | None:
    """The :class:`DiskFullError` ``exc`` stands for on ``db``, or None when it is about something else."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__ or exc
    code = getattr(cause, "sqlite_errorcode", None)
    state = getattr(cause, "sqlstate", None)
    if isinstance(db, peewee.SqliteDatabase):
        full = code == _SQLITE_FULL or (code is None and "database or disk is full" in str(exc))
    else:
        full = state == _PG_DISK_FULL
    if not full:
        return None
    where = f"SQLite file {db.database!r}" if isinstance(db, peewee.SqliteDatabase) else \
        f"PostgreSQL database {db.database!r}"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "disk full"
    return DiskFullError(f"the disk holding the {where} is full ({detail}): the transaction was rolled back and "
                         "nothing it wrote was kept; free space on that disk (or raise its quota), then try again")


class DriverErrors(peewee.Database):
    """Mixed in under a database class: the driver's errors that are about the caller's data, typed.

    A full disk raised by a statement or a COMMIT is a DiskFullError. A value the driver cannot even send
    (an integer beyond 64 bits for SQLite, text with a lone surrogate, which no encoding can write) is an
    InvalidQueryError: raised while binding, before the statement reaches the database, so the caller's
    transaction is untouched. The repositories refuse such values earlier, naming the field; this covers
    every other route (``Model.get(Model.id == ...)``, raw ``where`` expressions, ``select().limit(...)``).
    """

    def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_sql(sql, params, *args, **kwargs)  # type: ignore[no-untyped-call]  # stubs
        except (OverflowError, UnicodeEncodeError) as exc:
            raise _unsendable(exc) from None
        except peewee.DataError as exc:
            if sqlstate(exc) != _PG_OUT_OF_RANGE:
                raise
            # PostgreSQL refused it once sent (a LIMIT past bigint, say): typed, though, as with any error the
            # server raises, the transaction it was in can only be rolled back now.
            raise InvalidQueryError(f"a value of this query is out of range for PostgreSQL ({first_line(exc)}); "
                                    "pass a smaller one (LIMIT and OFFSET take at most 2**63-1)") from None
        except peewee.OperationalError as exc:
            error = disk_full(self, exc)
            if error is None:
                raise
            error.__cause__ = exc  # the driver's own words, for whoever debugs; it holds no secret
        raise error  # outside the except block: SQLite's "cannot rollback" can no longer stand in for it

    def commit(self) -> None:
        try:
            super().commit()
        except peewee.OperationalError as exc:
            error = disk_full(self, exc)
            if error is None:
                raise
            error.__cause__ = exc
        else:
            return
        raise error


def _unsendable(exc: BaseException) -> InvalidQueryError:
    if isinstance(exc, UnicodeEncodeError):
        what = (f"text holding {exc.object[exc.start:exc.end]!r} at position {exc.start}, which no encoding can "
                "write (a lone surrogate; decode the input with errors='replace', or drop the character)")
    else:
        what = "a whole number too large for the database (SQLite stores at most 64 bits: -2**63 .. 2**63-1)"
    return InvalidQueryError(f"a value of this query cannot be sent to the database: {what}; nothing was run")


class UTCSessions(peewee.PostgresqlDatabase):
    """Mixed in under any PostgreSQL-protocol database class: each new connection is set to UTC."""

    def _connect(self) -> Any:
        conn = super()._connect()  # type: ignore[misc]  # _connect is peewee internals, missing from the stubs
        try:
            with conn.cursor() as cursor:  # autocommit (peewee's): nothing is left open
                cursor.execute(SESSION_SQL)
        except Exception:
            conn.close()
            raise
        return conn


class PostgresDatabase(DriverErrors, UTCSessions, peewee.PostgresqlDatabase):
    """peewee's PostgreSQL database with its sessions in UTC (what ``postgresql://`` URLs open)."""


class Savepoint(peewee._savepoint):
    """peewee's savepoint, not rolled back to once SQLite has ended the whole transaction itself."""

    def rollback(self, begin: bool = True) -> None:
        if not _in_transaction(self.db):
            return  # SQLite ended the whole transaction itself: there is no savepoint left to go back to
        super().rollback(begin)


def _in_transaction(db: peewee.Database) -> bool:
    state: Any = db._state  # type: ignore[attr-defined]  # peewee's per-thread state, not in the stubs
    conn = None if db.is_closed() else state.conn
    return not isinstance(conn, sqlite3.Connection) or conn.in_transaction


class SqliteDatabase(DriverErrors, peewee.SqliteDatabase):
    """peewee's SQLite database, whose rollbacks never hide the error that made SQLite roll back already."""

    def rollback(self) -> None:
        if not _in_transaction(self):
            return  # SQLite rolled back on its own (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM): nothing to undo
        super().rollback()

    def savepoint(self) -> Any:
        return Savepoint(self)
