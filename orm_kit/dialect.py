"""Where SQLite and PostgreSQL differ, answered once.

Every "is this PostgreSQL?" in orm-kit asks this module, never ``isinstance`` on its own, so that a
:class:`peewee.DatabaseProxy` (which stands for whatever database it was initialised with) and every
subclass of peewee's two database classes (pooled, CockroachDB, orm-kit's own) get the same answer::

    from orm_kit import dialect
    dialect.name(db)                     # "sqlite" or "postgres" (ConfigurationError for anything else)
    dialect.is_postgres(db)              # True for PostgresqlDatabase and its subclasses, proxied or not
    dialect.unwrap(proxy)                # the database a DatabaseProxy stands for
    dialect.is_cockroach(db)             # CockroachDB (also is_postgres: it speaks PostgreSQL's protocol)
    dialect.transaction_pooled(db)       # opened with ?pgbouncer=transaction: no session state between transactions

Pooled databases (:mod:`orm_kit.pool`), a primary with read replicas (:mod:`orm_kit.replicas`) and
CockroachDB (:mod:`orm_kit.cockroach`) are all subclasses of ``peewee.PostgresqlDatabase``, so every
PostgreSQL answer below is theirs too.

What differs, and where it is handled:

====================  ==========================================  ==========================================
difference            SQLite                                      PostgreSQL
====================  ==========================================  ==========================================
datetimes             ISO text in UTC (:mod:`orm_kit.fields`)     ``timestamptz``
seconds between       ``julianday()`` (:func:`seconds_between`)   ``EXTRACT(EPOCH FROM ...)``
case-folding LIKE     ASCII only, built in                        ``translate()`` (:func:`fold_for_like`)
auto-increment key    ``INTEGER`` (:func:`serial_type`)           ``SERIAL``
ALTER TABLE           table rebuilds (the migrate engine)         in place
migration lock        ``BEGIN IMMEDIATE``                         an advisory lock
bind parameters       the connection's limit (:mod:`orm_kit.bulk`) 65535
====================  ==========================================  ==========================================
"""

from __future__ import annotations

from typing import Literal

import peewee
from playhouse.cockroachdb import CockroachDatabase  # peewee's: orm-kit's subclasses it

from orm_kit.errors import ConfigurationError

__all__ = [
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "fold_for_like",
    "is_cockroach",
    "is_postgres",
    "is_sqlite",
    "name",
    "seconds_between",
    "serial_type",
    "transaction_pooled",
    "unwrap",
]

Dialect = Literal["sqlite", "postgres"]
SQLITE: Dialect = "sqlite"
POSTGRES: Dialect = "postgres"

_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASCII_LOWER = "abcdefghijklmnopqrstuvwxyz"


def unwrap(db: peewee.Database | None) -> peewee.Database | None:
    """The database ``db`` stands for: a :class:`peewee.DatabaseProxy`'s target (None if it has none yet)."""
    while isinstance(db, peewee.DatabaseProxy):
        db = db.obj
    return db


def is_sqlite(db: peewee.Database | None) -> bool:
    """True when ``db`` (or the database a proxy stands for) is SQLite."""
    return isinstance(unwrap(db), peewee.SqliteDatabase)


def is_postgres(db: peewee.Database | None) -> bool:
    """True when ``db`` (or the database a proxy stands for) is PostgreSQL, or speaks its protocol."""
    return isinstance(unwrap(db), peewee.PostgresqlDatabase)


def is_cockroach(db: peewee.Database | None) -> bool:
    """True when ``db`` (or the database a proxy stands for) is CockroachDB (peewee's class or orm-kit's)."""
    return isinstance(unwrap(db), CockroachDatabase)


def transaction_pooled(db: peewee.Database | None) -> bool:
    """True when ``db`` was opened with ``?pgbouncer=transaction``: session state does not outlive a transaction."""
    return getattr(unwrap(db), "orm_kit_pgbouncer", None) == "transaction"


def name(db: peewee.Database | None) -> Dialect:
    """``"sqlite"`` or ``"postgres"``; a :class:`ConfigurationError` for any other database."""
    if is_sqlite(db):
        return SQLITE
    if is_postgres(db):
        return POSTGRES
    real = unwrap(db)
    raise ConfigurationError(
        f"{type(real).__name__ if real is not None else 'an uninitialised DatabaseProxy'} is not a database "
        "orm-kit supports; open SQLite or PostgreSQL with orm_kit.connect(url) or orm_kit.db.open_database(url)")


def serial_type(db: peewee.Database) -> str:
    """The column type of an auto-incrementing integer key (peewee's AutoField) on ``db``."""
    return "SERIAL" if is_postgres(db) else "INTEGER"


def seconds_between(db: peewee.Database | None, start: peewee.ColumnBase, end: peewee.ColumnBase) -> peewee.Node:
    """Whole seconds from ``start`` to ``end`` (UTC timestamps) as an SQL integer expression."""
    seconds: peewee.Node
    if is_postgres(db):
        seconds = peewee.fn.EXTRACT(peewee.NodeList((peewee.SQL("EPOCH FROM"), end - start)))
    else:  # SQLite stores UTC timestamps as ISO text, which julianday() reads
        seconds = (peewee.fn.julianday(end) - peewee.fn.julianday(start)) * 86400
    return peewee.fn.CAST(peewee.NodeList((peewee.fn.ROUND(seconds), peewee.SQL("AS INTEGER"))))


def fold_for_like(db: peewee.Database | None, column: peewee.Node) -> peewee.Node:
    """``column`` as a case-insensitive LIKE on ``db`` must see it: ASCII letters folded, nothing else.

    SQLite's LIKE (and LOWER) fold ASCII letters only; PostgreSQL's LOWER/ILIKE fold by the database's
    ctype, so there the column goes through ``translate(column, 'A..Z', 'a..z')`` instead.
    """
    if is_postgres(db):
        return peewee.fn.translate(column, _ASCII_UPPER, _ASCII_LOWER)
    return column
