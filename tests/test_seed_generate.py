"""The synthetic history and the bulk writer under it, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from orm_kit.bulk import BulkWriter, max_parameters, rows_per_chunk
from orm_kit.db import open_database
from orm_kit.errors import SeedError, ValidationError
from orm_kit.models import MODELS, Deployment, Environment, Incident, Release, Service, ServiceDependency, Team
from orm_kit.platform import migrate_up
from orm_kit.synthetic import DEPLOYMENT_FIELDS, generate, remove_generated, synthetic_rows

import factories as f
from conftest import reset_postgres
from test_seeding import dump

UTC = datetime.UTC


def fresh(backend: str, db_url: str, tmp_path: Path, name: str) -> peewee.Database:
    """Another empty, migrated database of the same backend (PostgreSQL: the test database, reset)."""
    url = f"sqlite:///{tmp_path / name}" if backend == "sqlite" else db_url
    if backend == "postgres":
        reset_postgres(url)
    db = open_database(url)
    db.bind(MODELS)
    migrate_up(db)
    return db


def test_the_same_random_seed_gives_the_same_rows_and_another_seed_other_rows(
        backend: str, db_url: str, tmp_path: Path) -> None:
    dumps = []
    for run, seed in enumerate((11, 11, 12)):
        db = fresh(backend, db_url, tmp_path, f"run{run}.db")
        result = generate(db, deployments=1500, random_seed=seed, services=5)
        assert result.deployments == Deployment.select().count() == 1500
        assert result.releases == Release.select().count() > 100
        assert result.incidents == Incident.select().count() > 0
        platform = {m._meta.table_name for m in MODELS}  # not the migration history: it holds times
        dumps.append({table: rows for table, rows in dump(db).items() if table in platform})
        db.close()
    assert dumps[0] == dumps[1]
    assert dumps[0]["deployment"] != dumps[2]["deployment"]
    assert dumps[0]["release"] != dumps[2]["release"]


def test_synthetic_rows_are_the_rows_generate_writes(backend: str, db_url: str, tmp_path: Path) -> None:
    db = fresh(backend, db_url, tmp_path, "rows.db")
    with db.atomic() as transaction:
        rows = list(synthetic_rows(db, deployments=300, random_seed=8, services=3))
        transaction.rollback()
    deployments = [row for model, row in rows if model is Deployment]
    assert rows[0][0] is Release and len(deployments) == 300
    generate(db, deployments=300, random_seed=8, services=3)
    ids = DEPLOYMENT_FIELDS.index("id")
    assert {row[ids] for row in deployments} == {d.id for d in Deployment.select()}
    assert sum(model is Release for model, _ in rows) == Release.select().count()
    db.close()


def test_the_history_is_valid_and_linked(migrated: peewee.Database) -> None:
    generate(migrated, deployments=3000, random_seed=5, services=4)
    rollbacks = list(Deployment.select().where(Deployment.rollback_of.is_null(False)))
    assert rollbacks, "no rollbacks generated"
    for rollback in rollbacks:
        target = rollback.rollback_of
        assert target.environment.slug == "synth-prod" and target.service_id == rollback.service_id
        assert target.incidents.count() == 1
        assert rollback.created_at > target.finished_at
    # Whole rows, as an insert would check them (a row read back validates only as a partial update).
    releases = {r.id: r for r in Release.select()}
    for model, rows in ((Release, releases.values()), (Incident, Incident.select()), (Deployment, Deployment.select())):
        for row in rows:
            assert model.check_data(row.__data__) == {}, row.__data__
    for row in Deployment.select():
        assert releases[row.release_id].service_id == row.service_id
        assert row.duration_seconds is not None
        assert row.duration_seconds == round((row.finished_at - row.started_at).total_seconds())
    assert Team.get(Team.name == "synthetic").services.count() == 4
    # a release id sequence that PostgreSQL keeps using after the explicit ids
    svc = Service.select().first()
    assert Release.create(service=svc, version="99.0.0", ref="main", commit_sha="c" * 40).id > 1


def test_a_second_run_with_the_same_seed_is_refused_and_changes_nothing(migrated: peewee.Database) -> None:
    generate(migrated, deployments=200, random_seed=3, services=2)
    before = dump(migrated)
    with pytest.raises(SeedError, match="random seed 3 is already loaded"):
        generate(migrated, deployments=200, random_seed=3, services=2)
    assert dump(migrated) == before
    generate(migrated, deployments=200, random_seed=4, services=2)  # another seed lives alongside
    assert Deployment.select().count() == 400


def application_tables(db: peewee.Database) -> dict[str, list[tuple[str, ...]]]:
    """:func:`dump` without orm-kit's own bookkeeping (which records what generate made)."""
    return {table: rows for table, rows in dump(db).items() if not table.startswith("orm_kit_")}


def test_remove_generated_takes_back_exactly_one_seeds_history(migrated: peewee.Database) -> None:
    empty = application_tables(migrated)
    first = generate(migrated, deployments=300, random_seed=1, services=2)
    only_first = dump(migrated)
    second = generate(migrated, deployments=300, random_seed=2, services=3)
    assert second.releases and second.incidents
    assert remove_generated(migrated, 2) == second
    assert dump(migrated) == only_first  # seed 1 and the shared world stay, and so does its record
    assert remove_generated(migrated, 1) == first
    assert application_tables(migrated) == empty
    with pytest.raises(SeedError, match="no synthetic history for random seed 1"):
        remove_generated(migrated, 1)


def test_remove_generated_never_touches_an_application_row_with_a_synthetic_looking_name(
        migrated: peewee.Database) -> None:
    owner = f.team(name="billing-team")
    billing = f.service(name="synth-s7-billing", owner=owner)
    f.deployment(billing, f.environment())
    before = dump(migrated)
    with pytest.raises(SeedError) as caught:  # nothing was ever generated: nothing to remove
        remove_generated(migrated, 7)
    assert "no synthetic history for random seed 7 was generated in this database" in str(caught.value)
    assert "the 1 service(s) named synth-s7-* were not generated by orm-kit" in str(caught.value)
    assert dump(migrated) == before
    generated = generate(migrated, deployments=200, random_seed=7, services=2)
    assert remove_generated(migrated, 7) == generated
    assert application_tables(migrated) == application_tables_of(before)


def application_tables_of(tables: dict[str, list[tuple[str, ...]]]) -> dict[str, list[tuple[str, ...]]]:
    return {table: rows for table, rows in tables.items() if not table.startswith("orm_kit_")}


def test_remove_generated_leaves_world_rows_it_found_rather_than_made(migrated: peewee.Database) -> None:
    team = f.team(name="synthetic", display_name="ours, from before")
    prod = f.environment(slug="synth-prod", name="Our synth-prod", tier="production")
    generate(migrated, deployments=100, random_seed=3, services=2)
    remove_generated(migrated, 3)
    assert Team.get_by_id(team.id).display_name == "ours, from before"
    assert Environment.get_by_id(prod.id).name == "Our synth-prod"
    assert Environment.select().where(Environment.slug.startswith("synth-")).count() == 1  # those it made are gone


@pytest.mark.parametrize("attach", ["deployment on a synthetic service", "incident caused by a synthetic deployment",
                                    "rollback of a synthetic deployment", "dependency on a synthetic service",
                                    "sub-team of the synthetic team"])
def test_remove_generated_refuses_while_an_application_row_refers_to_what_it_made(
        migrated: peewee.Database, attach: str) -> None:
    generate(migrated, deployments=300, random_seed=5, services=2)
    synthetic = Service.select().where(Service.name == "synth-s5-001").get()
    dev = Environment.get(Environment.slug == "synth-dev")  # no synthetic rollbacks there: rollback_of is unique
    made = Deployment.select().where(Deployment.service == synthetic, Deployment.environment == dev).first()
    ours = f.service(name="checkout")
    if attach == "deployment on a synthetic service":
        f.deployment(synthetic, dev)
    elif attach == "incident caused by a synthetic deployment":
        Incident.create(service=ours, environment=dev, caused_by=made, severity="sev2", title="x",
                        opened_at=datetime.datetime(2026, 3, 1, tzinfo=UTC))
    elif attach == "rollback of a synthetic deployment":
        f.deployment(ours, dev, rollback_of=made)
    elif attach == "dependency on a synthetic service":
        ServiceDependency.create(service=ours, depends_on=synthetic, kind="runtime")
    else:
        f.team(name="under-synthetic", parent=Team.get(Team.name == "synthetic"))
    before = dump(migrated)
    if attach == "sub-team of the synthetic team":  # the history goes; the world it shares with the team stays
        remove_generated(migrated, 5)
        assert Team.get(Team.name == "under-synthetic").parent.name == "synthetic"
        return
    with pytest.raises(SeedError, match=r"cannot remove the synthetic history of random seed 5: 1 .* row.s. it did "
                                        "not generate refer to its"):
        remove_generated(migrated, 5)
    assert dump(migrated) == before


def test_chunks_follow_a_lowered_sqlite_variable_limit(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'limit.db'}")
    db.bind(MODELS)
    migrate_up(db)
    db.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
    assert max_parameters(db) == 100
    assert rows_per_chunk(db, 11) == 9
    with pytest.raises(peewee.OperationalError, match="too many SQL variables"):
        db.execute_sql("SELECT " + ", ".join(["?"] * 101), [1] * 101)  # the limit is real
    generate(db, deployments=500, random_seed=1, services=3)
    assert Deployment.select().count() == 500
    db.close()


def test_the_larger_cache_is_given_back(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'cache.db'}")
    db.bind(MODELS)
    migrate_up(db)
    before = db.execute_sql("PRAGMA cache_size").fetchone()[0]
    generate(db, deployments=10, random_seed=1, services=1)
    assert db.execute_sql("PRAGMA cache_size").fetchone()[0] == before
    db.close()


def test_a_full_chunk_uses_the_real_parameter_limit(backend: str, migrated: peewee.Database) -> None:
    if backend == "sqlite":
        migrated.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 99)
    limit = max_parameters(migrated)
    assert limit == (65535 if backend == "postgres" else 99)

    def statement(parameters: int) -> None:
        marks = ", ".join([migrated.param] * parameters)
        migrated.execute_sql(f"SELECT 1 WHERE 1 IN ({marks})", [1] * parameters)

    statement(limit)
    with pytest.raises(peewee.OperationalError):  # the limit is the database's, not a guess
        statement(limit + 1)
    flushed: list[int] = []
    writer = BulkWriter(migrated, max_rows=10**6, on_flush=lambda model, n: flushed.append(n))
    writer.table(Team, ["name"])
    columns = len(writer.columns(Team))  # the name and the defaulted fields filled per row
    assert columns > 1 and writer.columns(Team)[0] == "name"
    chunk = limit // columns
    for n in range(chunk + 1):
        writer.add(Team, (f"team-{n}",))
    writer.flush()
    assert flushed == [chunk, chunk + 1]  # the largest chunk that fits, then the rest
    assert Team.select().count() == chunk + 1


def _teams(bad_at: int | None) -> Iterator[tuple[str, str | None]]:
    for n in range(1, 1001):
        yield (f"team-{n}", "not-an-address" if n == bad_at else f"t{n}@example.com")


def test_a_bad_row_500_of_a_bulk_load_loads_nothing(migrated: peewee.Database) -> None:
    flushed = []
    writer = BulkWriter(migrated, max_rows=64, on_flush=lambda model, n: flushed.append(n))
    writer.table(Team, ["name", "email"])

    def load_all() -> None:
        with migrated.atomic():
            for row in _teams(bad_at=500):
                writer.add(Team, row)
            writer.flush()

    with pytest.raises(ValidationError) as caught:
        load_all()
    assert caught.value.row == 499 and "email" in caught.value.errors
    assert flushed == [64 * k for k in range(1, 8)]  # seven chunks reached the database before row 500
    assert Team.select().count() == 0


def test_the_bulk_writer_streams_parents_before_children(migrated: peewee.Database) -> None:
    writer = BulkWriter(migrated, max_rows=10)
    writer.table(Team, ["id", "name", "parent"])
    for n in range(1, 101):
        writer.add(Team, (n, f"team-{n}", n - 1 if n > 1 else None))
    writer.flush()
    assert Team.select().count() == 100 and Team.get_by_id(100).parent.name == "team-99"


def test_remove_generated_counts_each_table_once_whatever_else_describes_it(migrated: peewee.Database) -> None:
    # A second model class over the deployment table (a migration's frozen copy, a test's) refers to Service too;
    # counted as another table, the generated deployments looked like rows someone else had added.
    class DeploymentCopy(peewee.Model):
        service = peewee.ForeignKeyField(Service, backref="+", on_delete="CASCADE")

        class Meta:
            database = migrated
            table_name = "deployment"

    generated = generate(migrated, deployments=200, random_seed=6, services=2)
    assert DeploymentCopy.select().count() == 200
    assert remove_generated(migrated, 6) == generated
