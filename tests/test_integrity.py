"""What the database refuses comes back typed, naming table, field, value and what it refers to: every write path.

Validation runs before any SQL, so these tests reach the database's own constraints the ways a real program
does: a duplicate, a key that does not exist, an SQL expression (which validation leaves to the database), a
model that allows what the table does not, a deferred foreign key checked at COMMIT. Each runs on SQLite and
PostgreSQL, whose messages differ completely; the errors must not.
"""

from __future__ import annotations

import uuid
from typing import Any

import peewee
import pytest

import orm_kit
from orm_kit import (
    CheckViolationError,
    Environment,
    EnvironmentRepository,
    ForeignKeyViolationError,
    NotNullViolationError,
    Service,
    ServiceRepository,
    Team,
    TeamRepository,
    UniqueViolationError,
    transaction,
)
from orm_kit.bulk import BulkWriter

import factories as f

TAKEN = "has already been taken ({!r}); choose another value"


def _refused(db: peewee.Database, error: type[Exception], write: Any) -> Any:
    """Run ``write`` in a savepoint (PostgreSQL aborts the transaction on a failed statement); the error."""
    with pytest.raises(error) as caught, transaction(db):
        write()
    assert isinstance(caught.value, peewee.IntegrityError) and isinstance(caught.value, orm_kit.OrmKitError)
    return caught.value


# --- unique: the value shown is the duplicate's, whatever else the row sets ------------------------------------

def test_model_create_twice_shows_the_duplicate_value_not_another_fields(orm_kit_db: peewee.Database) -> None:
    Team.create(name="payments", email="payments@example.com", display_name="Payments")
    error = _refused(orm_kit_db, UniqueViolationError,
                     lambda: Team.create(name="payments", email="other@example.com", display_name="Other"))
    assert error.errors == {"name": [TAKEN.format("payments")]}


def test_environment_names_the_unique_field_that_clashed_and_its_value(orm_kit_db: peewee.Database) -> None:
    Environment.create(name="Production", slug="prod", tier="production", region="eu-west-1")
    name = _refused(orm_kit_db, UniqueViolationError, lambda: Environment.create(
        name="Production", slug="prod-2", tier="production", region="us-east-1"))
    assert name.errors == {"name": [TAKEN.format("Production")]}
    slug = _refused(orm_kit_db, UniqueViolationError, lambda: Environment.create(
        name="Production 2", slug="prod", tier="staging", region="us-east-1"))
    assert slug.errors == {"slug": [TAKEN.format("prod")]}


@pytest.mark.parametrize("path", ["save", "insert", "insert_dict", "update", "get_or_create_after"])
def test_every_model_write_path_shows_the_duplicate(orm_kit_db: peewee.Database, path: str) -> None:
    Team.create(name="payments", email="a@example.com")
    other = Team.create(name="search", email="b@example.com")

    def write() -> None:
        if path == "save":
            Team(name="payments", email="c@example.com", display_name="X").save()
        elif path == "insert":
            Team.insert(name="payments", email="c@example.com", display_name="X").execute()
        elif path == "insert_dict":
            Team.insert({Team.email: "c@example.com", Team.name: "payments", Team.display_name: "X"}).execute()
        elif path == "update":
            Team.update(name="payments", email="c@example.com").where(Team.id == other.id).execute()
        else:
            other.name, other.email = "payments", "d@example.com"
            other.save()

    assert _refused(orm_kit_db, UniqueViolationError, write).errors == {"name": [TAKEN.format("payments")]}


def test_insert_many_and_bulk_create_name_the_row_and_its_value(orm_kit_db: peewee.Database) -> None:
    Environment.create(name="Production", slug="prod", tier="production")
    rows = [{"name": f"Env {i}", "slug": f"env-{i}", "tier": "testing", "region": f"r{i}"} for i in range(3)]
    rows.append({"name": "Other", "slug": "prod", "tier": "testing", "region": "r9"})
    error = _refused(orm_kit_db, UniqueViolationError, lambda: Environment.insert_many(rows).execute())
    assert (error.errors, error.row) == ({"slug": [TAKEN.format("prod")]}, 3)
    twice = [Environment(name=f"Twin {i}", slug="twin", tier="testing", region="eu") for i in range(2)]
    error = _refused(orm_kit_db, UniqueViolationError, lambda: Environment.bulk_create(twice))
    assert error.errors == {"slug": [TAKEN.format("twin")]} and error.row == 1
    assert Environment.select().count() == 1


def test_the_bulk_writer_names_the_row_over_every_chunk(orm_kit_db: peewee.Database) -> None:
    Environment.create(name="Production", slug="prod", tier="production")
    writer = BulkWriter(orm_kit_db, max_rows=2)
    writer.table(Environment, ["name", "slug", "tier", "region"])

    def write() -> None:
        for n in range(5):
            writer.add(Environment, (f"Env {n}", "prod" if n == 4 else f"env-{n}", "testing", f"r{n}"))
        writer.flush()

    error = _refused(orm_kit_db, UniqueViolationError, write)  # the third chunk, its only row: row 4 of all
    assert (error.errors, error.row) == ({"slug": [TAKEN.format("prod")]}, 4)
    team = f.team()
    services = BulkWriter(orm_kit_db, max_rows=2)
    services.table(Service, ["id", "name", "tier", "owner"])

    def write_services() -> None:
        for n in range(4):
            services.add(Service, (uuid.uuid4(), f"svc-{n}", "low", 31337 if n == 3 else team.id))
        services.flush()

    error = _refused(orm_kit_db, ForeignKeyViolationError, write_services)
    assert (error.fields, error.value, error.row, error.referenced_table) == (("owner",), 31337, 3, "team")


def test_repository_paths_show_the_duplicate(orm_kit_db: peewee.Database) -> None:
    teams, environments = TeamRepository(orm_kit_db), EnvironmentRepository(orm_kit_db)
    teams.create(name="payments", email="a@example.com", display_name="A")
    error = _refused(orm_kit_db, UniqueViolationError,
                     lambda: teams.create(name="payments", email="b@example.com", display_name="B"))
    assert error.errors == {"name": [TAKEN.format("payments")]}
    environments.create(name="Production", slug="prod", tier="production", region="eu")
    staging = environments.create(name="Staging", slug="staging", tier="staging", region="eu")
    error = _refused(orm_kit_db, UniqueViolationError,
                     lambda: environments.update(staging, slug="prod", region="us", tier="testing"))
    assert error.errors == {"slug": [TAKEN.format("prod")]}


# --- foreign keys: a missing parent, or a row still referred to ---------------------------------------------

def test_a_missing_parent_names_the_field_value_and_referenced_table(orm_kit_db: peewee.Database) -> None:
    error = _refused(orm_kit_db, ForeignKeyViolationError,
                     lambda: Service.create(name="checkout-api", tier="low", owner=987654))
    assert (error.table, error.fields, error.referenced_table, error.value, error.still_referenced) == (
        "service", ("owner",), "team", 987654, False)
    assert error.model == "Service" and error.errors == {"owner": ["refers to a team that does not exist (987654)"]}
    assert str(error).startswith("Service.owner = 987654 refers to a team that does not exist (service.owner_id -> "
                                 "team.id)")


def test_a_missing_parent_on_update_and_through_a_repository(orm_kit_db: peewee.Database) -> None:
    svc = f.service()
    error = _refused(orm_kit_db, ForeignKeyViolationError,
                     lambda: Service.update(owner=424242).where(Service.id == svc.id).execute())
    assert (error.fields, error.value, error.referenced_table) == (("owner",), 424242, "team")
    services = ServiceRepository(orm_kit_db)
    error = _refused(orm_kit_db, ForeignKeyViolationError,
                     lambda: services.create(name="orders-api", tier="low", owner=515151))
    assert (error.table, error.fields, error.value) == ("service", ("owner",), 515151)
    fresh = Service.get_by_id(svc.id)
    error = _refused(orm_kit_db, ForeignKeyViolationError, lambda: services.update(fresh, owner=616161))
    assert (error.fields, error.value) == (("owner",), 616161)


def test_a_missing_parent_in_a_multi_row_insert_names_the_row(orm_kit_db: peewee.Database) -> None:
    team = f.team()
    rows = [{"id": uuid.uuid4(), "name": f"svc-{i}", "tier": "low", "owner": team.id} for i in range(3)]
    rows[2]["owner"] = 777
    error = _refused(orm_kit_db, ForeignKeyViolationError, lambda: Service.insert_many(rows).execute())
    assert (error.fields, error.value, error.row, error.referenced_table) == (("owner",), 777, 2, "team")


def test_a_self_reference_within_one_insert_is_no_missing_parent(orm_kit_db: peewee.Database) -> None:
    rows = [{"id": 9001, "name": "root-team", "parent": None}, {"id": 9002, "name": "child-team", "parent": 9001},
            {"id": 9003, "name": "lost-team", "parent": 9100}]
    error = _refused(orm_kit_db, ForeignKeyViolationError, lambda: Team.insert_many(rows).execute())
    assert (error.fields, error.value, error.row) == (("parent",), 9100, 2)


@pytest.mark.parametrize("how", ["delete_query", "delete_instance", "repository", "repository_key"])
def test_deleting_a_row_others_still_refer_to_names_the_referring_table(orm_kit_db: peewee.Database,
                                                                       how: str) -> None:
    svc = f.service()
    owner = svc.owner
    write = {
        "delete_query": lambda: Team.delete().where(Team.id == owner.id).execute(),
        "delete_instance": lambda: owner.delete_instance(),
        "repository": lambda: TeamRepository(orm_kit_db).delete(owner),
        "repository_key": lambda: TeamRepository(orm_kit_db).delete(owner.id),
    }[how]
    error = _refused(orm_kit_db, ForeignKeyViolationError, write)
    assert (error.table, error.fields, error.referenced_table, error.still_referenced) == (
        "service", ("owner",) if error.model else ("owner_id",), "team", True)
    assert error.value == owner.id
    assert str(error).startswith(f"cannot delete team {owner.id}: service rows still refer to it (service.owner_id "
                                 "-> team.id")
    assert Team.select().where(Team.id == owner.id).exists()


# --- NOT NULL and CHECK: what validation leaves to the database --------------------------------------------

def test_not_null_the_model_allows_but_the_table_refuses(orm_kit_db: peewee.Database) -> None:
    class LaxService(Service):  # a model out of step with its table: description may be None here
        description = peewee.TextField(null=True)

        class Meta:
            table_name = "service"

    LaxService.bind(orm_kit_db)
    team = f.team()
    error = _refused(orm_kit_db, NotNullViolationError,
                     lambda: LaxService.insert(id=uuid.uuid4(), name="lax-api", tier="low", owner=team.id,
                                               description=None).execute())
    assert (error.table, error.fields, error.model) == ("service", ("description",), "LaxService")
    assert "description can't be blank: column service.description is NOT NULL" in str(error)


def test_a_column_check_names_its_field(orm_kit_db: peewee.Database) -> None:
    env = f.environment()
    error = _refused(orm_kit_db, CheckViolationError,
                     lambda: Environment.update(tier=peewee.Value("live")).where(Environment.id == env.id).execute())
    assert (error.table, error.fields) == ("environment", ("tier",))
    assert error.constraint in (None, "environment_tier_check")  # SQLite's unnamed one has no name
    assert "CHECK (\"tier\" IN ('production', 'staging', 'testing', 'development', 'other'))" in str(error)


def test_a_table_check_over_two_columns_names_both(orm_kit_db: peewee.Database) -> None:
    team = f.team()
    error = _refused(orm_kit_db, CheckViolationError,
                     lambda: Team.update(parent=team.id).where(Team.id == team.id).execute())
    assert (error.table, set(error.fields)) == ("team", {"parent", "id"})
    assert 'CHECK ("parent_id" IS NULL OR "parent_id" <> "id") is false for parent = ' in str(error)


# --- a deferred foreign key, checked at COMMIT ---------------------------------------------------------------

class Holder(orm_kit.Model):
    name = peewee.CharField(max_length=20)


class Claim(orm_kit.Model):
    holder = peewee.ForeignKeyField(Holder, deferrable="INITIALLY DEFERRED")


def test_a_deferred_foreign_key_broken_at_commit_is_named_and_nothing_is_kept(db: peewee.Database) -> None:
    db.bind([Holder, Claim])
    db.create_tables([Holder, Claim])
    holder = Holder.create(name="a")
    with pytest.raises(ForeignKeyViolationError) as caught, transaction(db):
        Claim.create(holder=holder.id + 40)  # accepted here: checked at COMMIT
    error = caught.value
    assert (error.table, error.fields, error.referenced_table) == ("claim", ("holder_id",), "holder")
    assert str(error.value) == str(holder.id + 40)  # PostgreSQL prints the key as text: no model says its type
    assert "at COMMIT (a deferred foreign key)" in str(error)
    assert Claim.select().count() == 0
    with transaction(db):
        Claim.create(holder=holder)
    assert Claim.select().count() == 1
