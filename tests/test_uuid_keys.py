"""UUID keys are stored in one form on both databases, whatever spelling they were given in.

peewee writes a 32-character text verbatim, so on SQLite a key given as 32 upper-case hex digits was kept
as given: the row was then not found by its UUID, a second row with the same UUID was accepted, and
references to it failed. Every orm-kit model now writes its UUIDs through ``orm_kit.fields.UUIDField``.
"""

from __future__ import annotations

import uuid

import peewee
import pytest

from orm_kit.errors import UniqueViolationError
from orm_kit.fields import UUIDField
from orm_kit.model import Model
from orm_kit.models import Deployment, Environment, Service, Team
from orm_kit.repositories import DeploymentRepository, ServiceRepository

KEY = uuid.UUID("8f2a61c4-93be-4d1e-b7a0-5c3e9d2f41e1")
SPELLINGS = [KEY.hex.upper(), str(KEY).upper(), "{" + str(KEY) + "}", "urn:uuid:" + str(KEY), KEY.hex, KEY]


def _stored(db: peewee.Database, table: str, column: str) -> list[object]:
    return [row[0] for row in db.execute_sql(f'SELECT "{column}" FROM "{table}"').fetchall()]


@pytest.mark.parametrize("spelling", SPELLINGS, ids=["HEX", "HYPHENATED", "braces", "urn", "hex", "uuid"])
def test_a_uuid_key_in_any_spelling_is_stored_once_found_and_referred_to(migrated: peewee.Database,
                                                                         spelling: object) -> None:
    team = Team.create(name="owners")
    env = Environment.create(name="Production", slug="prod", tier="production")
    Service.create(id=spelling, name="billing", owner=team, tier="low")
    assert _stored(migrated, "service", "id") in ([KEY.hex], [KEY])  # SQLite's text, PostgreSQL's uuid
    services = ServiceRepository(migrated)
    for other in SPELLINGS:
        assert Service.get_by_id(other).name == "billing"
        assert Service.get(Service.id == other).name == "billing"
        assert services.get(other).name == "billing"
        assert [s.name for s in services.find(id=other)] == ["billing"]
    with pytest.raises(UniqueViolationError, match="id has already been taken"):
        Service.create(id=KEY.hex.upper() if spelling != KEY.hex.upper() else str(KEY), name="twin", owner=team,
                       tier="low")
    deployment = Deployment.create(service=spelling, environment=env)
    assert _stored(migrated, "deployment", "service_id") in ([KEY.hex], [KEY])
    assert Deployment.get_by_id(deployment.id).service.name == "billing"
    assert [d.id for d in DeploymentRepository(migrated).find(service=KEY.hex.upper())] == [deployment.id]
    assert [s.name for s in Service.select().join(Deployment)] == ["billing"]


class Token(Model):
    """An application's model declaring peewee's own UUIDField."""

    id = peewee.UUIDField(primary_key=True)
    label = peewee.CharField(max_length=20)


def test_a_plain_peewee_uuid_field_on_an_orm_kit_model_is_canonical_too(migrated: peewee.Database) -> None:
    assert type(Token.id) is UUIDField
    with migrated.bind_ctx([Token]):
        migrated.create_tables([Token])
        Token.create(id=KEY.hex.upper(), label="a")
        assert Token.get_by_id(KEY).label == "a"
        with pytest.raises(UniqueViolationError):
            Token.create(id=str(KEY), label="b")
        assert _stored(migrated, "token", "id") in ([KEY.hex], [KEY])
