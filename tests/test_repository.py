"""The repository base on both databases: lookups, filters, pagination, writes, and injection attempts."""

from __future__ import annotations

import datetime
import uuid
from typing import Any, ClassVar

import peewee
import pytest
from playhouse.test_utils import count_queries

from orm_kit.errors import ConfigurationError, InvalidQueryError, NotFoundError, ValidationError
from orm_kit.model import Model
from orm_kit.models import Deployment, Service, Team
from orm_kit.repositories import DeploymentRepository, ServiceRepository, TeamRepository
from orm_kit.repository import Repository, escape_like

import factories

INJECTIONS = [
    "name; DROP TABLE team; --",
    "name DESC, (SELECT 1)",
    "1=1",
    "id) OR (1=1",
    '"name"',
    "name--",
    "__class__",
    "_meta",
]


@pytest.fixture
def teams(migrated: peewee.Database) -> TeamRepository:
    for name, display in [("alpha", "Alpha 100%"), ("beta", "Beta_team"), ("gamma", "100 percent"),
                          ("delta", "a\\b"), ("epsilon", None)]:
        factories.team(name=name, display_name=display)
    return TeamRepository(migrated)


def test_get_and_get_or_none(teams: TeamRepository) -> None:
    alpha = teams.find_by_name("alpha")
    assert alpha is not None
    got = teams.get(alpha.id)
    assert (got.name, got.display_name, got.created_at) == (alpha.name, alpha.display_name, alpha.created_at)
    assert got.__data__ == Team.get_by_id(alpha.id).__data__  # the prepared path builds what peewee builds
    assert not got.is_dirty()
    assert teams.get_or_none(10_000) is None
    assert teams.get_or_none("not a key") is None  # no SQL error, even on PostgreSQL
    with pytest.raises(NotFoundError) as caught:
        teams.get(10_000)
    assert str(caught.value).startswith("Team 10000 does not exist")
    assert (caught.value.model, caught.value.key) == ("Team", 10_000)


def test_uuid_keys(migrated: peewee.Database) -> None:
    services = ServiceRepository(migrated)
    svc = services.create(name="billing", tier="high", owner=factories.team())
    assert services.get(svc.id).name == "billing"
    assert services.get(str(svc.id)).id == svc.id
    assert services.get_or_none(uuid.uuid4()) is None
    assert services.get_or_none("zzz") is None


def test_find_filters_and_order(teams: TeamRepository) -> None:
    assert [t.name for t in teams.find()] == ["alpha", "beta", "delta", "epsilon", "gamma"]
    assert [t.name for t in teams.find(order_by=["-name"], limit=2)] == ["gamma", "epsilon"]
    assert [t.name for t in teams.find(order_by=["name"], offset=3)] == ["epsilon", "gamma"]
    assert [t.name for t in teams.find(name__in=["beta", "gamma", "nope"])] == ["beta", "gamma"]
    assert [t.name for t in teams.find(name__not_in=["beta", "gamma"])] == ["alpha", "delta", "epsilon"]
    assert [t.name for t in teams.find(display_name=None)] == ["epsilon"]
    assert [t.name for t in teams.find(display_name__isnull=False, name__gt="c")] == ["delta", "gamma"]
    assert [t.name for t in teams.find(name__startswith="ALP")] == ["alpha"]
    assert teams.find_one(name="beta").name == "beta"  # type: ignore[union-attr]
    assert teams.count() == 5 and teams.count(name__lte="beta") == 2
    assert teams.exists(name="delta") and not teams.exists(name="zeta")


def test_text_search_matches_wildcards_literally(teams: TeamRepository) -> None:
    assert [t.name for t in teams.find(display_name__contains="%")] == ["alpha"]
    assert [t.name for t in teams.find(display_name__contains="_")] == ["beta"]
    assert [t.name for t in teams.find(display_name__contains="100%")] == ["alpha"]
    assert [t.name for t in teams.find(display_name__contains="\\")] == ["delta"]
    assert [t.name for t in teams.search("100")] == ["alpha", "gamma"]
    assert [t.name for t in teams.search("%")] == ["alpha"]
    assert teams.search("' OR 1=1 --") == []
    assert escape_like("a%b_c\\") == "a\\%b\\_c\\\\"


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_in_sort_and_filter_names_is_rejected(teams: TeamRepository, payload: str) -> None:
    with pytest.raises(InvalidQueryError, match="cannot be sorted by"):
        teams.find(order_by=[payload])
    with pytest.raises(InvalidQueryError, match=r"cannot be filtered by|operator"):
        teams.find(**{payload: "x"})
    with pytest.raises(InvalidQueryError):
        teams.cursor_page(order_by=[payload])
    assert teams.count() == 5


@pytest.mark.parametrize("payload", [*INJECTIONS, "alpha' OR '1'='1", "zz%", "q_"])
def test_injection_in_values_is_a_parameter(teams: TeamRepository, payload: str) -> None:
    assert teams.find(name=payload) == []
    assert teams.find(display_name__contains=payload) == []
    assert teams.count() == 5


def test_bad_filter_values_are_typed_errors(teams: TeamRepository) -> None:
    with pytest.raises(InvalidQueryError, match="must be an integer"):
        teams.find(parent="1 OR 1=1")
    with pytest.raises(InvalidQueryError, match="list of values"):
        teams.find(name__in="alpha")
    with pytest.raises(InvalidQueryError, match="operator 'like'"):
        teams.find(name__like="a%")
    with pytest.raises(InvalidQueryError, match="isnull=True"):
        teams.find(name__gt=None)
    with pytest.raises(InvalidQueryError, match="limit"):
        teams.find(limit=-1)
    assert teams.count() == 5  # and the (PostgreSQL) connection is still usable


def test_page_pagination(teams: TeamRepository) -> None:
    pages = [teams.page(n, size=2, order_by=["name"]) for n in (1, 2, 3)]
    assert [[t.name for t in p.items] for p in pages] == [["alpha", "beta"], ["delta", "epsilon"], ["gamma"]]
    assert [(p.total, p.pages, p.has_next) for p in pages] == [(5, 3, True), (5, 3, True), (5, 3, False)]
    assert [t.name for t in teams.page(1, size=10, name__gt="c").items] == ["delta", "epsilon", "gamma"]
    with pytest.raises(InvalidQueryError, match="page number"):
        teams.page(0)


def test_cursor_pagination(teams: TeamRepository) -> None:
    seen, after = [], None
    for _ in range(5):
        page = teams.cursor_page(size=2, order_by=["-name"], after=after)
        seen.append([t.name for t in page.items])
        after = page.next_cursor
        if after is None:
            break
    assert seen == [["gamma", "epsilon"], ["delta", "beta"], ["alpha"]]
    first = teams.cursor_page(size=2, order_by=["-name"])
    with pytest.raises(InvalidQueryError, match="not one this listing issued"):
        teams.cursor_page(size=2, order_by=["name"], after=first.next_cursor)
    for garbage in ["", "!!!", "eyJvIjogMX0", first.next_cursor[:-3] + "AAA"]:  # type: ignore[index]
        with pytest.raises(InvalidQueryError):
            teams.cursor_page(size=2, order_by=["-name"], after=garbage)
    with pytest.raises(InvalidQueryError, match="can be null"):
        teams.cursor_page(order_by=["display_name"])


def test_create_update_delete(migrated: peewee.Database) -> None:
    teams = TeamRepository(migrated)
    with count_queries() as counter:
        team = teams.create(name="ops", email="ops@example.com")
    assert counter.count == 1 and isinstance(team.id, int)
    assert Team.get_by_id(team.id).email == "ops@example.com"
    child = teams.create(name="ops-child", parent=team)
    assert Team.get_by_id(child.id).parent_id == team.id
    teams.update(team, display_name="Operations")
    assert Team.get_by_id(team.id).display_name == "Operations"
    with pytest.raises(ValidationError) as caught:
        teams.create(name="Bad Name", email="nope")
    assert set(caught.value.errors) == {"name", "email"}
    with pytest.raises(ValidationError, match="has already been taken"):
        teams.create(name="ops")
    with pytest.raises(InvalidQueryError, match="no field 'colour'"):
        teams.create(name="x", colour="red")
    with pytest.raises(InvalidQueryError, match="cannot be updated"):
        teams.update(team, id=5)
    assert teams.delete(child) is True
    assert teams.delete(child.id) is False
    assert teams.delete("garbage") is False
    assert [t.name for t in teams.find()] == ["ops"]


def test_service_writes_stamp_updated_at_and_version(migrated: peewee.Database) -> None:
    services = ServiceRepository(migrated)
    svc = services.create(name="api", tier="low", owner=factories.team())
    first = svc.updated_at
    services.update(svc, description="the API")
    stored = Service.get_by_id(svc.id)
    assert (stored.description, stored.lock_version) == ("the API", 2)
    assert stored.updated_at > first


def test_repository_needs_the_bound_database(migrated: peewee.Database, tmp_path: object) -> None:
    other = peewee.SqliteDatabase(":memory:")
    with pytest.raises(ConfigurationError, match="not to the database given to TeamRepository"):
        TeamRepository(other)

    class Nameless(Repository[Team]):
        pass

    with pytest.raises(ConfigurationError, match="names no model"):
        Nameless(migrated)


def test_fast_paths_fill_derived_fields(migrated: peewee.Database) -> None:
    """Model.derive runs on the repository's own INSERT and UPDATE, as on Model.save()."""
    deployments = DeploymentRepository(migrated)
    start = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
    created = deployments.create(service=factories.service(), environment=factories.environment(),
                                 started_at=start, finished_at=start + datetime.timedelta(minutes=2))
    assert created.duration_seconds == 120
    assert Deployment.get_by_id(created.id).duration_seconds == 120
    deployments.update(created, finished_at=start + datetime.timedelta(minutes=5))
    assert Deployment.get_by_id(created.id).duration_seconds == 300
    loaded = deployments.get(created.id)
    loaded.started_at = start + datetime.timedelta(minutes=4)
    deployments.save(loaded)
    assert (loaded.duration_seconds, Deployment.get_by_id(created.id).duration_seconds) == (60, 60)


def test_text_operators_only_on_text_fields(teams: TeamRepository) -> None:
    for key in ("parent__contains", "created_at__startswith", "id__contains"):
        with pytest.raises(InvalidQueryError, match=r"matches text, and Team\.\w+ is not a text field"):
            teams.find(**{key: "1"})
    assert teams.count(name__contains="ph") == 1  # the (PostgreSQL) transaction is still usable


def test_case_folding_is_ascii_only_on_both_databases(migrated: peewee.Database) -> None:
    for name, display in [("upper", "ÄBC Corp"), ("lower", "äbc corp"), ("ascii", "Abc Corp")]:
        factories.team(name=name, display_name=display)
    teams = TeamRepository(migrated)

    def found(**filters: object) -> list[str]:
        return sorted(t.name for t in teams.find(**filters))  # type: ignore[arg-type]

    assert found(display_name__contains="äbc") == ["lower"]  # PostgreSQL's LOWER() would fold Ä as well
    assert found(display_name__contains="ÄBC") == ["upper"]
    assert found(display_name__contains="aBC") == ["ascii"]
    assert found(display_name__startswith="ÄBc") == ["upper"]
    assert found(display_name__contains="CORP") == ["ascii", "lower", "upper"]
    assert sorted(t.name for t in teams.search("äBC")) == ["lower"]


class Journal(Model):
    """A model with a save() of its own, which the repository must not bypass."""

    id = peewee.AutoField()
    text = peewee.CharField()
    saves: ClassVar[list[str]] = []

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        Journal.saves.append(self.text)
        return super().save(force_insert=force_insert, only=only)


class JournalRepository(Repository[Journal]):
    model = Journal


def test_a_models_own_save_runs(migrated: peewee.Database) -> None:
    Journal.bind(migrated)
    migrated.create_tables([Journal])
    Journal.saves.clear()
    try:
        journal = JournalRepository(migrated)
        entry = journal.create(text="first")
        journal.update(entry, text="second")
        assert Journal.saves == ["first", "second"]
        assert journal.get(entry.id).text == "second"
    finally:
        Journal.bind(None)  # type: ignore[arg-type]


def test_failed_saves_leave_the_copy_as_it_was(migrated: peewee.Database) -> None:
    services = ServiceRepository(migrated)
    owner = factories.team()
    services.create(name="taken", tier="low", owner=owner)
    svc = services.create(name="api", tier="low", owner=owner)
    read_at = svc.updated_at
    with pytest.raises(ValidationError, match="has already been taken"):
        services.update(svc, name="taken")
    assert (svc.name, svc.updated_at, svc.lock_version) == ("taken", read_at, 1)  # the change stays; no stamp
    teams = TeamRepository(migrated)
    gone = teams.create(name="gone")
    teams.delete(gone.id)
    gone.display_name = "Gone"
    with pytest.raises(NotFoundError, match=r"Team \d+ does not exist"):
        teams.save(gone)  # Model.save() would return 0; a repository says the row is gone
    assert gone.dirty_fields == [Team.display_name]


def test_a_new_instance_with_its_own_key_is_inserted(migrated: peewee.Database) -> None:
    teams = TeamRepository(migrated)
    teams.save(Team(id=77, name="chosen"))
    assert Team.get_by_id(77).name == "chosen"


def test_a_repository_naming_a_field_its_model_lacks_fails_at_once(migrated: peewee.Database) -> None:
    class Typo(Repository[Team]):
        model = Team
        sort_fields = ("name", "nmae")

    class Numeric(Repository[Team]):
        model = Team
        search_fields = ("parent",)

    class Unsearchable(Repository[Team]):
        model = Team

    with pytest.raises(ConfigurationError, match=r"Typo.sort_fields names 'nmae', which is not a field of Team"):
        Typo(migrated)
    with pytest.raises(ConfigurationError, match="not a text field"):
        Numeric(migrated)
    with pytest.raises(ConfigurationError, match=r"search_fields = \('name', 'display_name'\)"):
        Unsearchable(migrated).search("x")


def test_get_with_a_key_of_the_wrong_type_says_so_and_points_to_the_finders(migrated: peewee.Database) -> None:
    from orm_kit.repositories import ServiceRepository

    with pytest.raises(NotFoundError, match=r"that is no Service key: its primary key must be a UUID .* find_unique"):
        ServiceRepository(migrated).get("checkout-api")
