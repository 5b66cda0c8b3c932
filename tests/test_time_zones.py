"""Time is stored in UTC and read back whatever the PostgreSQL server's or database's ``TimeZone``."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orm_kit import seeding
from orm_kit.db import open_database
from orm_kit.errors import InvalidQueryError, SeedProblemsError, ValidationError
from orm_kit.models import MODELS, Deployment, Team
from orm_kit.platform import SEED_REGISTRY, migrate_up
from orm_kit.repositories import DeploymentRepository, TeamRepository

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


EARLY = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=14)))  # year 0 in UTC
LATE = datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.timezone(-datetime.timedelta(hours=2)))  # year 10000


@pytest.mark.parametrize("instant", [EARLY, LATE], ids=["year-0-in-utc", "year-10000-in-utc"])
def test_an_instant_outside_years_1_to_9999_in_utc_is_a_typed_error_on_every_path(
        migrated: Any, tmp_path: Path, instant: datetime.datetime) -> None:
    """It used to be OverflowError from a write, a query, a repository filter, DORA's period and a seed file."""
    team = Team.create(name="owners")
    with migrated.atomic():  # on PostgreSQL the transaction goes on working after each refusal
        with pytest.raises(ValidationError, match="created_at is outside years 1 to 9999 once converted to UTC"):
            Team.create(name="late", created_at=instant)
        with pytest.raises(ValidationError, match="outside years 1 to 9999"):
            Team.update(created_at=instant).execute()
        with pytest.raises(ValidationError, match="started_at is outside"):
            Deployment.create(service=None, environment=None, started_at=instant, finished_at=instant)
        with pytest.raises(InvalidQueryError, match="outside years 1 to 9999"):
            list(Team.select().where(Team.created_at < instant))
        with pytest.raises(InvalidQueryError, match="outside years 1 to 9999"):
            TeamRepository(migrated).find(created_at__lt=instant)
        with pytest.raises(InvalidQueryError, match="outside years 1 to 9999"):
            DeploymentRepository(migrated).dora_metrics(FIRST, instant)
        assert [t.name for t in Team.select()] == ["owners"]
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "teams.yaml").write_text(
        f"team:\n  - name: owners\n  - name: later\n    created_at: {instant.isoformat(' ')}\n")
    with pytest.raises(SeedProblemsError) as caught:
        seeding.load(migrated, SEED_REGISTRY, tmp_path / "seeds")
    assert str(caught.value).startswith(f"{tmp_path / 'seeds' / 'teams.yaml'}, line 4: team field 'created_at': "
                                        "is outside years 1 to 9999")
    assert [t.name for t in Team.select()] == [team.name]
