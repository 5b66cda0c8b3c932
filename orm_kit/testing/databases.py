"""The test session's databases: one migrated database per backend, built once, removed at the end.

    from orm_kit.testing import SchemaSetup, SessionDatabases

    schema = SchemaSetup(models=MODELS, migrations=Path("migrations"))   # or no migrations: create_tables
    databases = SessionDatabases(schema, folder=tmp)
    db = databases.get("sqlite")                       # built on first use, then the same database
    db = databases.get("postgres", server_url=url)     # a new database on that server, dropped by close()
    db = databases.get("postgres", server_url=pooled, direct_url=url)   # migrated directly, tests via the pooler
    databases.close()

The pytest plugin (:mod:`orm_kit.testing.plugin`) does this once per session and wraps every test in a
:func:`orm_kit.transactions.sandbox` on top, so each test sees the migrated schema and nothing another
test wrote. On PostgreSQL the session's database is a new one (``<name>_t<random>``) on the server the
URL names, never the URL's own database, so a session never touches data it did not create; its user
needs the CREATEDB privilege (the throwaway server's has it).

Tests may run through a transaction pooler (``?pgbouncer=transaction``) while the database is created,
migrated and dropped over ``direct_url``, a direct connection to the same server: migrations need a
server session of their own, which the pooler cannot give (as ``orm-kit migrate`` takes
``ORM_KIT_DIRECT_DATABASE_URL``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee

from orm_kit import dialect
from orm_kit._sql import execute, quote
from orm_kit.db import open_database, redact_url, scrub
from orm_kit.errors import ConfigurationError, DatabaseUnavailableError, MigrationError, first_line
from orm_kit.migrate import AppMigrations, Runner

__all__ = ["BACKENDS", "SchemaSetup", "SessionDatabases"]

BACKENDS = (dialect.SQLITE, dialect.POSTGRES)


@dataclass(frozen=True)
class SchemaSetup:
    """What a test database holds: ``models`` (bound to it), built by ``migrations`` (a folder, or several apps'
    folders: :class:`~orm_kit.migrate.AppMigrations`) or create_tables.

    ``after`` runs once per database when it is built, and what it writes is committed before the first
    test: reference data every test may read (tests themselves still roll back).
    """

    models: Sequence[type[peewee.Model]]
    migrations: Path | Sequence[AppMigrations] | None = None
    after: Callable[[peewee.Database], object] | None = None

    def build(self, db: peewee.Database) -> None:
        """Migrate (or create the tables of) an empty database, then run ``after``."""
        db.bind(self.models)
        if self.migrations is not None:
            Runner(db, self.migrations).up()
        else:
            db.create_tables(self.models)
        if self.after is not None:
            with db.atomic():
                self.after(db)


class SessionDatabases:
    """One built database per backend, created on first use (see the module docstring)."""

    def __init__(self, schema: SchemaSetup, folder: Path) -> None:
        self.schema = schema
        self.folder = folder
        self._open: dict[str, peewee.Database] = {}
        self._drop: list[tuple[str, str]] = []  # (server URL, database) to drop at close

    def get(self, backend: str, server_url: str | None = None, direct_url: str | None = None) -> peewee.Database:
        """The session's database of ``backend`` ("sqlite" or "postgres", which needs ``server_url``; built over
        ``direct_url`` when given, a direct connection to the server ``server_url`` reaches through a pooler)."""
        if backend not in BACKENDS:
            raise ConfigurationError(f"unknown test backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        db = self._open.get(backend)
        if db is None:
            db = self._create(backend, server_url, direct_url)
            self._open[backend] = db
        return db

    def _create(self, backend: str, server_url: str | None, direct_url: str | None) -> peewee.Database:
        if backend == dialect.SQLITE:
            self.folder.mkdir(parents=True, exist_ok=True)
            db = open_database(f"sqlite:///{self.folder / 'test.db'}")
            builder = db
        else:
            if not server_url:
                raise ConfigurationError("the postgres test backend needs a server URL "
                                         "(ORM_KIT_TEST_POSTGRES_URL or --orm-kit-postgres-url)")
            name = self._new_postgres_database(direct_url or server_url)
            db = open_database(_on(server_url, name))
            builder = open_database(_on(direct_url, name)) if direct_url else db
        try:
            try:
                self.schema.build(builder)
            except MigrationError as exc:
                if dialect.transaction_pooled(builder):
                    raise ConfigurationError(
                        f"cannot migrate the test database through a transaction pooler ({exc}): give the tests a "
                        "direct URL to the same server, ORM_KIT_TEST_POSTGRES_DIRECT_URL or "
                        "--orm-kit-postgres-direct-url, to build the database with; the tests still run through "
                        "the pooler") from None
                raise
            finally:
                if builder is not db:
                    builder.close()
        except BaseException:
            db.close()
            raise
        return db

    def _new_postgres_database(self, server_url: str) -> str:
        """Create a database of this session's own on ``server_url``'s server; its name."""
        base = urlsplit(server_url).path.lstrip("/") or "orm_kit"
        name = f"{base[:40]}_t{secrets.token_hex(4)}"  # random: parallel sessions may share one server
        admin = open_database(server_url)
        try:
            execute(admin, f"CREATE DATABASE {quote(name)}")
        except peewee.DatabaseError as exc:
            raise DatabaseUnavailableError(
                f"cannot create the test database {name!r} on {redact_url(server_url)}: "
                f"{scrub(first_line(exc, typed=False), server_url)} (the test user needs CREATEDB: "
                "ALTER ROLE ... CREATEDB, or use the throwaway server: leave ORM_KIT_TEST_POSTGRES_URL unset)"
            ) from None
        finally:
            admin.close()
        self._drop.append((server_url, name))
        return name

    def close(self, backend: str | None = None) -> None:
        """Close the databases (or ``backend``'s) and drop the PostgreSQL database this session created."""
        for name in [backend] if backend else list(self._open):
            db = self._open.pop(name, None)
            if db is not None and not db.is_closed():
                with contextlib.suppress(peewee.PeeweeException):
                    if db.in_transaction():
                        db.rollback()
                db.close()
        if backend not in (None, dialect.POSTGRES):
            return
        for server_url, name in self._drop:
            admin = open_database(server_url)
            try:
                try:
                    execute(admin, f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
                except peewee.ProgrammingError:  # before PostgreSQL 13: no FORCE
                    execute(admin, f"DROP DATABASE IF EXISTS {quote(name)}")
            finally:
                admin.close()
        self._drop.clear()


def _on(url: str, database: str) -> str:
    """``url`` naming ``database`` instead of its own (its options, e.g. ?pgbouncer=transaction, kept)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))
