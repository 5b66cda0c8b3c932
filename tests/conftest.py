"""Fixtures: every database test runs on a fresh SQLite file and on a real PostgreSQL server.

PostgreSQL comes from ``ORM_KIT_TEST_POSTGRES_URL`` (``.ci/run`` starts one and sets it); without it the
session starts its own throwaway server with :mod:`orm_kit.testing.pgserver`. If neither works the PostgreSQL
tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The worked example app's package (feature_flags), importable as a service's own code imports it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "feature-flags"))

from orm_kit.db import open_database
from orm_kit.models import MODELS
from orm_kit.platform import migrate_up
from orm_kit.testing import pgserver

BACKENDS = ("sqlite", "postgres")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "feature-flags"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the test PostgreSQL database (started here unless the environment provides one)."""
    given = os.environ.get("ORM_KIT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    # Not under pytest's tmp folder: that is private to this user, and the server runs as `postgres`.
    datadir = Path(tempfile.mkdtemp(prefix="orm-kit-pg-"))
    try:
        url = pgserver.start(datadir)
    except (SystemExit, OSError, Exception) as exc:  # noqa: BLE001 - reported, never skipped
        pytest.fail(f"could not start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield url
    finally:
        pgserver.stop(datadir)
        shutil.rmtree(datadir, ignore_errors=True)


def reset_postgres(url: str) -> None:
    """Drop everything the previous test created: a fresh public schema."""
    db = open_database(url)
    try:
        db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        db.execute_sql("CREATE SCHEMA public")
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
def migrated(db: peewee.Database) -> peewee.Database:
    """The database with the shipped migrations applied."""
    migrate_up(db)
    return db
