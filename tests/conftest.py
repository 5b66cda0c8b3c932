"""Fixtures: every database test runs on a fresh SQLite file and on a real PostgreSQL server.

Two kinds of database fixture. orm-kit's own pytest plugin (``orm_kit.testing.plugin``, installed with the
package) gives ``orm_kit_db``: the session's migrated database, each test inside a transaction rolled back
at its end; most tests of what the platform's tables and repositories do use it. The fixtures here give a
fresh, empty database per test (``db``, ``migrated``), for tests of migrations, commits, locks and other
connections, which a rolled-back transaction would hide.

PostgreSQL comes from ``ORM_KIT_TEST_POSTGRES_URL`` (``.ci/run`` starts one and sets it); without it the
plugin starts its own throwaway server (:mod:`orm_kit.testing.pgserver`), shared by both kinds. If neither
works the PostgreSQL tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import peewee
import psycopg
import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))
# The worked example app's package (feature_flags), importable as a service's own code imports it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "feature-flags"))

from orm_kit.db import open_database, parse_url
from orm_kit.models import MODELS
from orm_kit.platform import migrate_up
from orm_kit.testing import pgbouncer, pgserver

pytest_plugins = ["pytester"]  # tests of the pytest plugin run pytest inside pytest

# Hypothesis: the suite is deterministic (the same examples on every run and machine, none remembered between
# runs), so a CI failure reproduces and a green run means the same thing twice. HYPOTHESIS_PROFILE=explore
# draws new examples, ten times as many, to look for more.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = ("sqlite", "postgres")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "feature-flags"


@pytest.fixture(scope="session")
def postgres_url(orm_kit_postgres_url: str) -> str:
    """The URL of the test PostgreSQL database (the plugin's: from the environment, or a throwaway server)."""
    return orm_kit_postgres_url


@pytest.fixture(scope="session")
def postgres_direct_url(orm_kit_postgres_direct_url: str) -> str:
    """A direct connection to the test database for migrating it (ORM_KIT_TEST_POSTGRES_DIRECT_URL when the tests
    run through a transaction pooler; else postgres_url itself)."""
    return orm_kit_postgres_direct_url


@dataclass(frozen=True)
class ReplicaPair:
    """A primary and its streaming hot standby, started for this test session (``pgserver.start_pair``)."""

    root: Path
    primary_url: str
    standby_url: str

    @property
    def primary_port(self) -> int:
        return int(urlsplit(self.primary_url).port or 0)

    @property
    def standby_port(self) -> int:
        return int(urlsplit(self.standby_url).port or 0)


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[ReplicaPair]:
    """A real primary + hot standby (synchronous commit on the primary), about 2-3 s to start; never skipped."""
    root = Path(tempfile.mkdtemp(prefix="orm-kit-pair-"))
    try:
        primary, standby = pgserver.start_pair(root)
    except (SystemExit, OSError, Exception) as exc:  # noqa: BLE001 - reported, never skipped
        pgserver.stop(root)
        pytest.fail(f"could not start the test primary + standby pair: {exc}", pytrace=False)
    try:
        yield ReplicaPair(root, primary, standby)
    finally:
        pgserver.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """A URL through a PgBouncer in transaction mode in front of the test server; never skipped."""
    datadir = Path(tempfile.mkdtemp(prefix="orm-kit-pgbouncer-"))
    try:
        url = pgbouncer.start(datadir, postgres_url)
    except (SystemExit, OSError, Exception) as exc:  # noqa: BLE001 - reported, never skipped
        pytest.fail(f"could not start PgBouncer (apt-get install pgbouncer): {exc}", pytrace=False)
    try:
        yield url
    finally:
        pgbouncer.stop(datadir)
        shutil.rmtree(datadir, ignore_errors=True)


def raw_connect(url: str, **options: object) -> psycopg.Connection[tuple[object, ...]]:
    """A psycopg connection to ``url`` made as orm-kit makes it (its own URL options, e.g. pgbouncer=, applied)."""
    parsed = parse_url(url)
    return psycopg.connect(dbname=parsed.database, **{**parsed.driver, **options})


def reset_postgres(url: str) -> None:
    """Drop everything the previous test created: a fresh public schema."""
    db = open_database(url)
    try:
        db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        db.execute_sql("CREATE SCHEMA public")
    finally:
        db.close()


@pytest.fixture
def pg(postgres_url: str) -> Iterator[peewee.Database]:
    """An open, empty PostgreSQL database (no models bound): for tests about PostgreSQL alone."""
    reset_postgres(postgres_url)
    db = open_database(postgres_url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which database a test runs on; tests that use a database run once per backend."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL to an empty database of the test's backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[peewee.Database]:
    """An open, empty database with the platform's models bound to it."""
    database = open_database(db_url)
    database.bind(MODELS)
    try:
        yield database
    finally:
        if not database.is_closed():
            database.close()


@pytest.fixture
def direct_url(db_url: str, backend: str, request: pytest.FixtureRequest) -> str:
    """``db_url``'s database as migrations reach it: directly, when the tests run through a transaction pooler."""
    if backend == "postgres":
        direct: str = request.getfixturevalue("postgres_direct_url")
        return direct
    return db_url


@pytest.fixture
def migrated(db: peewee.Database, db_url: str, direct_url: str) -> peewee.Database:
    """The database with the shipped migrations applied (over the direct URL, as a deployment runs them)."""
    if direct_url == db_url:
        migrate_up(db)
        return db
    migrator = open_database(direct_url)
    try:
        migrate_up(migrator)
    finally:
        migrator.close()
    return db
