"""Time is stored in UTC and read back whatever the PostgreSQL server's or database's ``TimeZone``."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from orm_kit.db import open_database
from orm_kit.models import MODELS, Team
from orm_kit.platform import migrate_up

from conftest import raw_connect

UTC = datetime.UTC
LAST = datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
FIRST = datetime.datetime(1, 1, 1, tzinfo=UTC)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{name}").geturl()


@pytest.fixture(params=["Pacific/Kiritimati", "Etc/GMT+12"], ids=["utc+14", "utc-12"])
def far_zone_url(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own whose sessions default to a time zone 12 or 14 hours from UTC (dropped after)."""
    name = f"tz_{uuid.uuid4().hex[:10]}"
    with raw_connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = '{request.param}'")
    try:
        yield _with_database(postgres_url, name)
    finally:
        with raw_connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.postgres
@pytest.mark.parametrize("route", ["plain", "pool", "pgbouncer", "pgbouncer+pool"])
def test_instants_at_both_ends_of_the_range_read_back_whatever_the_servers_time_zone(
        far_zone_url: str, route: str, request: pytest.FixtureRequest) -> None:
    url = far_zone_url
    if "pgbouncer" in route:
        bouncer: str = request.getfixturevalue("pgbouncer_url")
        url = _with_database(bouncer, urlsplit(far_zone_url).path.lstrip("/")) + "?pgbouncer=transaction"
    if "pool" in route:
        url = url.replace("postgresql://", "postgresql+pool://", 1)
    migrator = open_database(far_zone_url)
    try:
        migrate_up(migrator)
    finally:
        migrator.close()
    db = open_database(url)
    db.bind(MODELS)
    try:
        for attempt in range(2):  # a pool's second checkout comes after its reset (RESET ALL)
            with db.connection_context():
                assert db.execute_sql("SHOW TimeZone").fetchone()[0] == "UTC"
                if attempt == 0:
                    Team.create(name="last", created_at=LAST)
                    Team.create(name="first", created_at=FIRST)
                assert {t.name: t.created_at for t in Team.select()} == {"last": LAST, "first": FIRST}
    finally:
        db.close()
