"""The three connections every workload runs through: the stdlib driver, plain peewee, and orm-kit."""

from __future__ import annotations

import datetime
import itertools
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import peewee
from plain import bind as bind_plain

from orm_kit import migrate_up
from orm_kit.db import open_database, redact_url
from orm_kit.models import MODELS

UTC = datetime.UTC
WHO = ("raw", "peewee", "orm-kit")


class Raw:
    """The stdlib driver with hand-written SQL, and the value conversions the ORMs do for us."""

    def __init__(self, connection: Any, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres
        self.execute = connection.execute

    def q(self, sql: str) -> str:
        """``sql`` written with ``?`` placeholders, in this driver's style."""
        return sql.replace("?", "%s") if self.postgres else sql

    def begin(self) -> None:
        self.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rows(self, sql: str, params: Any = ()) -> list[Any]:
        return list(self.execute(self.q(sql), params).fetchall())

    def executemany(self, sql: str, rows: list[Any]) -> None:
        if self.postgres:
            with self.connection.cursor() as cursor:
                cursor.executemany(self.q(sql), rows)
        else:
            self.connection.executemany(sql, rows)

    # reading: SQLite returns text, psycopg returns Python objects already
    def uuid(self, value: Any) -> Any:
        return value if self.postgres or value is None else uuid.UUID(value)

    def time(self, value: Any) -> Any:
        if value is None:
            return None
        if self.postgres:
            return value.astimezone(UTC)
        return datetime.datetime.fromisoformat(value + "+00:00")  # stored as fixed-width UTC text

    # writing
    def p_uuid(self, value: Any) -> Any:
        return value if self.postgres or value is None else value.hex

    def p_time(self, value: Any) -> Any:
        if value is None or self.postgres:
            return value
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


@dataclass
class Backend:
    name: str
    orm: peewee.Database  # orm-kit's models are bound to it
    plain: peewee.Database  # the plain peewee models are bound to it
    raw: Raw
    postgres: bool
    url: str
    scratch: Callable[[str], str]  # a fresh, empty database of this kind: its URL
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for db in (self.orm, self.plain):
            if not db.is_closed():
                db.close()
        self.raw.connection.close()
        for step in reversed(self.cleanup):
            step()


def sqlite_pragmas(connection: sqlite3.Connection) -> None:
    # What orm_kit.db.open_database sets (and peewee's connection to the same file gets the same).
    for pragma in ("foreign_keys = 1", "journal_mode = wal", "busy_timeout = 30000", "synchronous = normal"):
        connection.execute(f"PRAGMA {pragma}")


def sqlite_backend(folder: Path) -> Backend:
    counter = itertools.count()

    def scratch(tag: str) -> str:
        return f"sqlite:///{folder / f'{tag}-{next(counter)}.db'}"

    url = f"sqlite:///{folder / 'bench.db'}"
    return _connect("SQLite " + sqlite3.sqlite_version, url, scratch, postgres=False)


def _connect(name: str, url: str, scratch: Callable[[str], str], *, postgres: bool) -> Backend:
    orm = open_database(url)
    orm.bind(MODELS)
    migrate_up(orm)
    plain = open_database(url)  # a plain peewee.SqliteDatabase / PostgresqlDatabase, the same settings
    bind_plain(plain)
    if postgres:
        import psycopg

        connection: Any = psycopg.connect(url, autocommit=True)
    else:
        connection = sqlite3.connect(urlsplit(url).path[1:], isolation_level=None)
        sqlite_pragmas(connection)
    return Backend(name, orm, plain, Raw(connection, postgres), postgres, url, scratch)


def postgres_backend(url: str) -> Backend:
    import psycopg

    admin = psycopg.connect(url, autocommit=True)
    version = admin.info.server_version
    parts = urlsplit(url)
    made: list[str] = []
    counter = itertools.count()

    def create(name: str) -> str:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return urlunsplit(parts._replace(path="/" + name))

    def scratch(tag: str) -> str:
        return create(f"orm_kit_bench_{tag}_{next(counter)}")

    def drop_all() -> None:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    try:
        main_url = create("orm_kit_bench")
    except psycopg.Error as exc:
        raise SystemExit(f"cannot create the bench's scratch databases on {redact_url(url)}: {exc} "
                         "(the user needs CREATEDB)") from None
    backend = _connect(f"PostgreSQL {version // 10000}.{version % 100}", main_url, scratch, postgres=True)
    backend.cleanup.append(drop_all)
    return backend


# --- the data the workloads read ------------------------------------------------------------------

