"""An app's own models: Repository(Model, db) with no subclass, and typed backrefs onto the platform's models."""

from __future__ import annotations

import peewee
import pytest

from feature_flags.models import MODELS as FLAG_MODELS
from feature_flags.models import DeployWindow, FeatureFlag, flags_of, windows_of
from orm_kit import Environment, Repository, Service, ServiceRepository, Team, ValidationError, backref, platform
from orm_kit.apps import App, migration_sources
from orm_kit.errors import ConfigurationError, NotFoundError
from orm_kit.migrate import Runner

from conftest import EXAMPLE


@pytest.fixture
def both(db: peewee.Database) -> peewee.Database:
    db.bind(FLAG_MODELS)
    Runner(db, migration_sources([platform.APP, App("flags", FLAG_MODELS, EXAMPLE / "migrations")])).up()
    return db


def test_a_repository_for_any_model_without_a_subclass(both: peewee.Database) -> None:
    service = Service.create(name="checkout-api", tier="high", owner=Team.create(name="payments"))
    flags = Repository(FeatureFlag, both)
    flag = flags.create(service=service, name="new-checkout", rollout_percent=10)
    assert flags.get(flag.id).name == "new-checkout"
    assert [f.name for f in flags.find(service=service, rollout_percent__lt=50)] == ["new-checkout"]
    assert flags.update(flag, enabled=True).enabled is True
    with pytest.raises(ValidationError, match=r"rollout_percent must be at most 100"):
        flags.create(service=service, name="too-much", rollout_percent=150)
    with pytest.raises(NotFoundError, match="FeatureFlag 999 does not exist"):
        flags.get(999)
    windows = Repository(DeployWindow, db=both)  # keyword form too
    prod = Environment.create(name="Production", slug="prod", tier="production")
    windows.create(environment=prod, weekday=0, start_hour=9, end_hour=16)
    assert windows.count() == 1


def test_generic_repositories_of_two_models_keep_their_own_compiled_statements(both: peewee.Database) -> None:
    # Both are the class Repository: statements compiled per query shape must still be kept per model.
    owner = Team.create(name="payments")
    service = Service.create(name="checkout-api", tier="high", owner=owner)
    FeatureFlag.create(service=service, name="shared-name")
    teams, flags = Repository(Team, both), Repository(FeatureFlag, both)
    assert [t.name for t in teams.find(name="payments")] == ["payments"]
    assert [f.name for f in flags.find(name="shared-name")] == ["shared-name"]  # same shape, other table
    assert isinstance(flags.find(name="shared-name")[0], FeatureFlag)
    assert teams.count(name="payments") == 1 and flags.count(name="shared-name") == 1
    assert flags.delete_where(name="shared-name") == 1 and teams.count() == 1


def test_a_repository_refuses_a_model_it_is_not_for_or_no_model_at_all(both: peewee.Database) -> None:
    with pytest.raises(ConfigurationError, match=r"ServiceRepository is the repository of Service, not of "
                                                 r"FeatureFlag; use Repository\(FeatureFlag, db\) for that model"):
        ServiceRepository(FeatureFlag, both)
    with pytest.raises(ConfigurationError, match=r"Repository names no model; pass it \(Repository\(YourModel, "
                                                 r"db\)\)"):
        Repository(both)
    with pytest.raises(TypeError, match="takes the database last"):
        Repository(FeatureFlag, FeatureFlag)
    assert ServiceRepository(Service, both).model is Service


def test_a_typed_backref_is_the_attribute_peewee_adds(both: peewee.Database) -> None:
    service = Service.create(name="checkout-api", tier="high", owner=Team.create(name="payments"))
    other = Service.create(name="search", tier="low", owner=service.owner)
    FeatureFlag.create(service=service, name="a")
    FeatureFlag.create(service=other, name="b")
    assert [f.name for f in flags_of(service)] == [f.name for f in service.feature_flags] == ["a"]
    prod = Environment.create(name="Production", slug="prod", tier="production")
    assert list(windows_of(prod)) == []
    assert repr(flags_of) == "backref(FeatureFlag, FeatureFlag.service)"
    with pytest.raises(TypeError, match=r"FeatureFlag\.service points at Service, not Environment"):
        flags_of(prod)
    with pytest.raises(ConfigurationError, match=r"DeployWindow\.environment is not a field of FeatureFlag"):
        backref(FeatureFlag, DeployWindow.environment)
