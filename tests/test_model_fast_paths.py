"""Model.get_by_id / get / save / create / insert_many run SQL built once, with exactly peewee's behaviour.

Each case is run twice: through orm-kit's fast path, and through peewee's general path on the same
model (the fast path steps aside for anything it does not cover, which these tests force with an SQL
expression or a different query). Both must leave the same rows and return the same things.
"""

from __future__ import annotations

import datetime
import uuid

import peewee
import pytest

from orm_kit.errors import ConflictError, ValidationError
from orm_kit.models import Deployment, Service, Team

import factories

pytestmark = pytest.mark.usefixtures("migrated")

UTC = datetime.UTC


def test_get_by_id_and_get_find_what_peewee_finds() -> None:
    ops = factories.team(name="ops", display_name="Ops")
    via_peewee = Team.select().where(Team.id == ops.id).get()
    for found in (Team.get_by_id(ops.id), Team.get(Team.id == ops.id), Team.get(ops.id), Team.get(name="ops"),
                  Team.get(Team.name == "ops"), Team[ops.id], Team.get_or_none(Team.name == "ops")):
        assert found.__data__ == via_peewee.__data__
        assert not found.is_dirty() and found._persisted
    assert Team.get_or_none(Team.name == "nobody") is None
    with pytest.raises(Team.DoesNotExist, match="instance matching query does not exist"):
        Team.get_by_id(10_000)
    with pytest.raises(Team.DoesNotExist):
        Team.get(name="nobody")
    svc = factories.service(name="api")
    assert Service.get_by_id(str(svc.id)).name == "api"  # a key given as text, as peewee converts it
    assert Service.get(Service.owner == svc.owner_id).id == svc.id


def test_get_with_anything_else_is_peewee_s() -> None:
    factories.team(name="a-team")
    factories.team(name="b-team")
    assert Team.get(Team.name.startswith("b")).name == "b-team"
    assert Team.get(Team.name == "a-team", Team.display_name.is_null()).name == "a-team"
    assert Team.get(name="a-team", display_name=None).name == "a-team"


def test_save_is_peewee_s_save() -> None:
    team = Team(name="fresh")
    assert team.save() == 1 and team._persisted and isinstance(team.id, int)
    assert not team.is_dirty()
    team.display_name = "Fresh"
    assert team.save() == 1 and Team.get_by_id(team.id).display_name == "Fresh"
    assert team.save(only=[Team.display_name]) == 1
    # An auto-increment model given its own key and never read: peewee sends an UPDATE that matches nothing.
    ghost = Team(id=4242, name="ghost")
    assert ghost.save() == 0 and Team.get_or_none(Team.id == 4242) is None
    assert Team(id=4243, name="forced").save(force_insert=True) == 1
    assert Team.get_by_id(4243).name == "forced"


def test_save_of_a_uuid_model_inserts_then_updates_with_the_version_checked() -> None:
    owner = factories.team()
    svc = Service(name="svc", tier="low", owner=owner)
    assert svc.save() == 1 and Service.get_by_id(svc.id).lock_version == 1
    stale = Service.get_by_id(svc.id)
    svc.description = "first"
    svc.save()
    assert Service.get_by_id(svc.id).lock_version == 2
    stale.description = "second"
    with pytest.raises(ConflictError, match="stale"):
        stale.save()
    assert Service.get_by_id(svc.id).description == "first"


def test_a_unique_violation_on_the_fast_paths_names_the_field() -> None:
    factories.team(name="taken")
    with pytest.raises(ValidationError, match="has already been taken"):
        Team.create(name="taken")
    other = Team.create(name="other")
    other.name = "taken"
    with pytest.raises(ValidationError, match="has already been taken"):
        other.save()


def test_save_of_only_some_fields_of_a_derived_model_goes_through_peewee() -> None:
    start = datetime.datetime(2026, 1, 1, 12, tzinfo=UTC)
    d = factories.deployment(factories.service(), factories.environment(), started_at=start,
                             finished_at=start + datetime.timedelta(minutes=1))
    d.finished_at = start + datetime.timedelta(minutes=3)
    d.save(only=[Deployment.finished_at])
    assert Deployment.get_by_id(d.id).duration_seconds == 180


def test_insert_many_returns_and_stores_what_peewee_does(backend: str) -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"name": f"many-{n}", "created_at": now} for n in range(5)]
    result = Team.insert_many(rows).execute()
    # The general path, forced by an SQL expression as a value: the reference.
    reference = Team.insert_many([{"name": peewee.Value("ref-0"), "created_at": now}]
                                 + [{"name": f"ref-{n}", "created_at": now} for n in range(1, 5)]).execute()
    fast_ids = [t.id for t in Team.select().where(Team.name.startswith("many-")).order_by(Team.id)]
    ref_ids = [t.id for t in Team.select().where(Team.name.startswith("ref-")).order_by(Team.id)]
    if backend == "postgres":
        assert [row[0] for row in result] == fast_ids and [row[0] for row in reference] == ref_ids
    else:
        assert (result, reference) == (fast_ids[-1], ref_ids[-1])  # the last row id, as peewee returns it
    stored = {t.name: (t.display_name, t.email, t.parent_id, t.created_at) for t in Team.select()}
    assert stored["many-3"] == stored["ref-3"] == (None, None, None, now)


def test_insert_many_fills_defaults_takes_tuples_and_refuses_a_missing_value() -> None:
    Team.insert_many([("t-one", None, None, None), ("t-two", "Two", None, None)],
                     fields=[Team.name, Team.display_name, Team.email, Team.parent]).execute()
    Team.insert_many([{"name": "t-three"}]).execute()
    teams = {t.name: t for t in Team.select()}
    assert teams["t-two"].display_name == "Two" and teams["t-three"].created_at is not None
    with pytest.raises(ValidationError, match="can't be blank"):
        Team.insert_many([{"display_name": "no name"}]).execute()
    with pytest.raises(ValidationError, match="has already been taken"):
        Team.insert_many([{"name": "t-one"}]).execute()
    ids = [uuid.uuid4(), uuid.uuid4()]
    owner = factories.team()
    Service.insert_many([{"id": ids[0], "name": "s-one", "tier": "low", "owner": owner},
                         {"id": ids[1], "name": "s-two", "tier": "low", "owner": owner.id}]).execute()
    assert sorted(s.id for s in Service.select().where(Service.name.startswith("s-"))) == sorted(ids)


class ActiveTeam(Team):
    """A model whose select() hides rows (soft deletes): get() and get_by_id() must go through it."""

    @classmethod
    def select(cls, *fields: object) -> peewee.ModelSelect:  # type: ignore[override]
        return super().select(*fields).where(cls.display_name != "deleted")

    class Meta:
        table_name = "team"


def test_a_model_s_own_select_is_respected_by_get(migrated: peewee.Database) -> None:
    ActiveTeam.bind(migrated)
    gone = factories.team(name="gone", display_name="deleted")
    kept = factories.team(name="kept", display_name="kept")
    assert ActiveTeam.get_by_id(kept.id).name == "kept"
    with pytest.raises(ActiveTeam.DoesNotExist):
        ActiveTeam.get_by_id(gone.id)
    with pytest.raises(ActiveTeam.DoesNotExist):
        ActiveTeam.get(ActiveTeam.name == "gone")
