"""Safe forms: what the migrator runs on a table in use, what it leaves for after the commit, and drops that
never cascade. PostgreSQL gets the safe forms; SQLite (the local database) keeps peewee's plain ones."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.errors import MigrationFailedError, MigrationRefusedError
from orm_kit.migrate import MigrationSql, Runner, check, preview_sql
from orm_kit.models import MODELS
from orm_kit.platform import migrate_up, migrations_dir

BASE = '''
def up(migrator, db):
    db.execute_sql("CREATE TABLE owner (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)")
    db.execute_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20), n INTEGER NOT NULL, "
                   "owner_id INTEGER)")
    db.execute_sql("INSERT INTO owner (id, name) VALUES (1, 'a'), (2, 'b')")
    for i in range(1, 26):
        label = "NULL" if i % 5 == 0 else f"'x{i}'"
        db.execute_sql(f"INSERT INTO item (id, label, n, owner_id) VALUES ({i}, {label}, {i}, {1 + i % 2})")


def down(migrator, db):
    db.execute_sql("DROP TABLE item")
    db.execute_sql("DROP TABLE owner")
'''


def migration(folder: Path, name: str, up: str, down: str = "pass", header: str = "") -> Path:
    path = folder / f"{name}.py"
    path.write_text("import peewee\n" + textwrap.dedent(header) + "\n\ndef up(migrator, db):\n"
                    + textwrap.indent(textwrap.dedent(up).strip(), "    ") + "\n\n\ndef down(migrator, db):\n"
                    + textwrap.indent(textwrap.dedent(down).strip() or "pass", "    ") + "\n")
    return path


def base_folder(tmp_path: Path, db: peewee.Database) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    (path / "0001_base.py").write_text(BASE)
    assert Runner(db, path).up() == ["0001_base"]
    return path


@pytest.fixture
def folder(tmp_path: Path, db: peewee.Database) -> Path:
    """A migrations folder whose 0001 (applied) made `owner` and `item` (25 rows, 5 labels NULL)."""
    return base_folder(tmp_path, db)


@pytest.fixture
def pgdb(postgres_url: str) -> Iterator[peewee.Database]:
    """An empty PostgreSQL database, for what only PostgreSQL has (SQLite cannot ALTER a constraint in)."""
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    database = open_database(postgres_url)
    database.bind(MODELS)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def pg_folder(tmp_path: Path, pgdb: peewee.Database) -> Path:
    """`folder`, on PostgreSQL."""
    return base_folder(tmp_path, pgdb)


def pg(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def preview(db: peewee.Database, folder: Path) -> MigrationSql:
    (plan,) = preview_sql(db, folder)
    return plan


def rows(db: peewee.Database, sql: str) -> list[tuple[object, ...]]:
    return list(db.execute_sql(sql).fetchall())


def invalid_indexes(db: peewee.Database) -> list[str]:
    return [name for (name,) in rows(db, "SELECT c.relname FROM pg_index AS i JOIN pg_class AS c "
                                         "ON c.oid = i.indexrelid WHERE NOT i.indisvalid")]


def test_a_not_null_column_with_a_default_is_one_add_column_and_old_code_can_still_insert(db, folder):
    migration(folder, "0002_region", """
        migrator.migrate(migrator.add_column("item", "region", peewee.CharField(max_length=16, default="eu")))
    """, 'migrator.migrate(migrator.drop_column("item", "region"))')
    plan = preview(db, folder)
    if pg(db):
        # One catalog-only statement, no rewrite, no UPDATE of every row, nothing after the commit.
        assert plan.statements == ["ALTER TABLE \"item\" ADD COLUMN \"region\" VARCHAR(16) NOT NULL DEFAULT 'eu'"]
        assert plan.after_commit == []
    else:  # SQLite keeps peewee's form: add, fill, then NOT NULL through a table rebuild
        assert plan.statements[:2] == ['ALTER TABLE "item" ADD COLUMN "region" VARCHAR(16)',
                                       "UPDATE \"item\" SET \"region\" = 'eu'"]
    assert Runner(db, folder).up() == ["0002_region"]
    assert rows(db, "SELECT count(*), min(region), max(region) FROM item") == [(25, "eu", "eu")]
    if pg(db):  # the default stays in the database: code deployed before the migration does not name the column
        db.execute_sql("INSERT INTO item (id, n) VALUES (100, 1)")
        assert rows(db, "SELECT region FROM item WHERE id = 100") == [("eu",)]
    assert Runner(db, folder).down(allow_data_loss=True) == ["0002_region"]  # its column holds rows


def test_a_callable_default_is_computed_once_and_not_left_as_a_default(db, folder):
    migration(folder, "0002_stamp", """
        migrator.migrate(migrator.add_column("item", "stamp", peewee.IntegerField(default=lambda: 7)))
    """)
    if pg(db):
        assert preview(db, folder).statements == ['ALTER TABLE "item" ADD COLUMN "stamp" INTEGER NOT NULL DEFAULT 7',
                                                  'ALTER TABLE "item" ALTER COLUMN "stamp" DROP DEFAULT']
    Runner(db, folder).up()
    assert rows(db, "SELECT DISTINCT stamp FROM item") == [(7,)]


def test_an_index_on_a_table_in_use_is_built_concurrently_after_the_commit(db, folder):
    migration(folder, "0002_label_index", 'migrator.migrate(migrator.add_index("item", ("label",), False))',
              'migrator.migrate(migrator.drop_index("item", "item_label"))')
    plan = preview(db, folder)
    if pg(db):
        assert plan.statements == []
        assert plan.after_commit == ['CREATE INDEX CONCURRENTLY IF NOT EXISTS "item_label" ON "item" ("label")']
    else:
        assert plan.statements == ['CREATE INDEX "item_label" ON "item" ("label")'] and plan.after_commit == []
    said: list[str] = []
    assert Runner(db, folder, progress=said.append).up() == ["0002_label_index"]
    assert [(r.name, r.outcome) for r in Runner(db, folder).history()] == [("0001_base", "applied"),
                                                                          ("0002_label_index", "applied")]
    assert "item_label" in {i.name for i in db.get_indexes("item")}
    if pg(db):
        assert said == ['0002_label_index up(): after its commit: CREATE INDEX CONCURRENTLY IF NOT EXISTS '
                        '"item_label" ON "item" ("label")']
        assert invalid_indexes(db) == []
    assert Runner(db, folder).down() == ["0002_label_index"]


def test_a_table_the_migration_creates_keeps_the_plain_forms(db, folder):
    migration(folder, "0002_tag", """
        db.execute_sql("CREATE TABLE tag (id INTEGER PRIMARY KEY, name VARCHAR(20))")
        migrator.migrate(migrator.add_index("tag", ("name",), True),
                         migrator.add_column("tag", "weight", peewee.IntegerField(default=1)))
    """)
    plan = preview(db, folder)
    assert 'CREATE UNIQUE INDEX "tag_name" ON "tag" ("name")' in plan.statements
    assert plan.after_commit == []


def test_a_failed_concurrent_build_leaves_no_invalid_index_and_repair_finishes_it(db, folder):
    migration(folder, "0002_unique_owner", """
        migrator.migrate(migrator.add_column("item", "code", peewee.IntegerField(null=True)))
        migrator.migrate(migrator.add_index("item", ("owner_id",), True))
    """)
    runner = Runner(db, folder)
    if not pg(db):  # SQLite builds it inside the migration's transaction: the duplicates roll back all of it
        with pytest.raises(MigrationFailedError, match=r"0002_unique_owner up\(\) failed: IntegrityError.*rolled back"):
            runner.up()
        assert "code" not in {c.name for c in db.get_columns("item")}
        return
    with pytest.raises(MigrationFailedError) as failure:
        runner.up()
    assert str(failure.value).startswith(
        '0002_unique_owner up(): its transaction committed, but a step after it failed: CREATE UNIQUE INDEX '
        'CONCURRENTLY IF NOT EXISTS "item_owner_id" ON "item" ("owner_id"): IntegrityError: could not create unique '
        'index "item_owner_id"; it is recorded as failed: remove the cause, then `orm-kit migrate repair`')
    assert invalid_indexes(db) == []  # the failed build's leftover was dropped concurrently
    assert "code" in {c.name for c in db.get_columns("item")}  # the transaction did commit
    assert [(r.name, r.outcome) for r in runner.history()][-1] == ("0002_unique_owner", "failed")
    with pytest.raises(MigrationRefusedError, match=r"0002_unique_owner \(atomic = False, or the steps after its "
                                                    r"commit\) failed at .* `orm-kit migrate repair`"):
        runner.up()
    db.execute_sql("UPDATE item SET owner_id = id")  # the cause: duplicate owners
    report = runner.repair()
    assert (report.finished, report.cleared) == (["0002_unique_owner"], [])
    assert runner.status().ok
    assert [i.unique for i in db.get_indexes("item") if i.name == "item_owner_id"] == [True]


@pytest.mark.postgres
def test_checks_and_foreign_keys_are_added_not_valid_then_validated_after_the_commit(pgdb, pg_folder):
    db, folder = pgdb, pg_folder
    migration(folder, "0002_constraints", """
        migrator.migrate(
            migrator.add_constraint("item", "item_n_positive", peewee.Check("n > 0")),
            migrator.add_foreign_key_constraint("item", "owner_id", "owner", "id", on_delete="SET NULL"),
        )
    """)
    plan = preview(db, folder)
    assert plan.statements == [
        'ALTER TABLE "item" ADD CONSTRAINT "item_n_positive" CHECK (n > 0) NOT VALID',
        'ALTER TABLE "item" ADD CONSTRAINT "fk_item_owner_id_refs_owner" FOREIGN KEY ("owner_id") REFERENCES "owner" '
        '("id") ON DELETE SET NULL NOT VALID']
    assert plan.after_commit == ['ALTER TABLE "item" VALIDATE CONSTRAINT "item_n_positive"',
                                 'ALTER TABLE "item" VALIDATE CONSTRAINT "fk_item_owner_id_refs_owner"']
    db.execute_sql("UPDATE item SET n = 0 WHERE id = 3")  # a row the CHECK refuses: the VALIDATE step fails
    runner = Runner(db, folder)
    with pytest.raises(MigrationFailedError, match=r'a step after it failed: ALTER TABLE "item" VALIDATE CONSTRAINT '
                                                   r'"item_n_positive": IntegrityError: check constraint'):
        runner.up()
    db.execute_sql("UPDATE item SET n = 3 WHERE id = 3")
    assert runner.repair().finished == ["0002_constraints"]
    assert rows(db, "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'item'::regclass "
                    "AND contype <> 'p' ORDER BY 1") == [("fk_item_owner_id_refs_owner", True),
                                                         ("item_n_positive", True)]


def test_add_not_null_goes_through_a_validated_check(db, folder):
    migration(folder, "0002_label_required", """
        migrator.migrate(migrator.backfill("item", {"label": "none"}, where='"label" IS NULL', batch_size=2))
        migrator.migrate(migrator.add_not_null("item", "label"))
    """)
    plan = preview(db, folder)
    if pg(db):
        assert plan.statements == []
        assert plan.after_commit == [
            "WITH batch AS (SELECT \"id\" FROM \"item\" WHERE (\"label\" IS NULL) ORDER BY \"id\" LIMIT 2), changed AS "
            "(UPDATE \"item\" SET \"label\" = 'none' FROM batch WHERE \"item\".\"id\" = batch.\"id\" RETURNING 1) "
            "SELECT (SELECT \"id\" FROM batch ORDER BY \"id\" DESC LIMIT 1), (SELECT count(*) FROM changed)",
            'ALTER TABLE "item" ADD CONSTRAINT "item_label_not_null" CHECK ("label" IS NOT NULL) NOT VALID',
            'ALTER TABLE "item" VALIDATE CONSTRAINT "item_label_not_null"',
            'ALTER TABLE "item" ALTER COLUMN "label" SET NOT NULL, DROP CONSTRAINT IF EXISTS "item_label_not_null"']
    said: list[str] = []
    assert Runner(db, folder, progress=said.append).up() == ["0002_label_required"]
    assert rows(db, "SELECT count(*) FROM item WHERE label = 'none'") == [(5,)]
    assert [c.null for c in db.get_columns("item") if c.name == "label"] == [False]
    if pg(db):
        assert "0002_label_required up(): backfill item: done, 5 rows in 3 batches" in said
        checks = "SELECT count(*) FROM pg_constraint WHERE conrelid = 'item'::regclass AND contype = 'c'"
        assert rows(db, checks) == [(0,)]  # the helper CHECK is gone


def test_a_backfill_walks_the_whole_table_in_batches_each_committed(db, folder):
    migration(folder, "0002_double", """
        migrator.migrate(migrator.backfill("item", {"n": peewee.SQL('"n" * 2')}, batch_size=10))
    """)
    said: list[str] = []
    Runner(db, folder, progress=said.append).up()
    assert rows(db, "SELECT sum(n) FROM item") == [(2 * sum(range(1, 26)),)]
    if pg(db):
        assert said[-1] == "0002_double up(): backfill item: done, 25 rows in 3 batches"


@pytest.mark.postgres
def test_a_foreign_key_column_on_a_table_in_use_is_validated_after_the_commit(pgdb, pg_folder):
    db, folder = pgdb, pg_folder
    migration(folder, "0002_reviewer", """
        class Owner(peewee.Model):
            class Meta:
                table_name = "owner"
        migrator.migrate(migrator.add_column("item", "reviewer_id",
                                             peewee.ForeignKeyField(Owner, null=True, field=Owner.id)))
    """)
    plan = preview(db, folder)
    assert plan.statements == [
        'ALTER TABLE "item" ADD COLUMN "reviewer_id" INTEGER',
        'ALTER TABLE "item" ADD CONSTRAINT "item_reviewer_id_fkey" FOREIGN KEY ("reviewer_id") REFERENCES "owner" '
        '("id") NOT VALID']
    assert plan.after_commit == ['ALTER TABLE "item" VALIDATE CONSTRAINT "item_reviewer_id_fkey"',
                                 # peewee indexes a foreign key column by default
                                 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "item_reviewer_id" ON "item" ("reviewer_id")']
    Runner(db, folder).up()
    assert rows(db, "SELECT convalidated FROM pg_constraint WHERE conname = 'item_reviewer_id_fkey'") == [(True,)]


@pytest.mark.postgres
def test_add_unique_builds_its_index_concurrently_then_attaches_it(pgdb, pg_folder):
    db, folder = pgdb, pg_folder
    migration(folder, "0002_unique_n", 'migrator.migrate(migrator.add_unique("item", "n"))')
    plan = preview(db, folder)
    assert plan.statements == []
    assert plan.after_commit == ['CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "uniq_n" ON "item" ("n")',
                                 'ALTER TABLE "item" ADD CONSTRAINT "uniq_n" UNIQUE USING INDEX "uniq_n"']
    Runner(db, folder).up()
    assert rows(db, "SELECT contype FROM pg_constraint WHERE conname = 'uniq_n'") == [("u",)]


def test_down_never_cascades_and_names_the_view_in_the_way(migrated: peewee.Database, db_url: str) -> None:
    migrated.execute_sql("CREATE VIEW slow_deployments AS SELECT id, duration_seconds FROM deployment "
                         "WHERE duration_seconds > 600")
    runner = Runner(migrated, migrations_dir())
    with pytest.raises(MigrationFailedError) as failure:
        runner.down(steps=2)
    message = str(failure.value)
    if pg(migrated):
        assert message.startswith(
            "0002_deployment_duration down() failed: DependentObjectsError: refusing to drop column "
            "deployment.duration_seconds: view slow_deployments depends on it, and orm-kit never drops with CASCADE "
            "on its own (drop or change it first")
    else:  # SQLite refuses by itself, naming the view
        assert "0002_deployment_duration down() failed: OperationalError: error in view slow_deployments" in message
    assert "rolled back" in message and "0003_deployment_history_indexes reverted before it stay so" in message
    assert "slow_deployments" in {v.name for v in migrated.get_views()}
    assert "duration_seconds" in {c.name for c in migrated.get_columns("deployment")}
    assert [r.name for r in runner.history()] == ["0001_initial", "0002_deployment_duration"]
    migrated.close()
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "down"])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "slow_deployments" in result.stderr


@pytest.mark.postgres
def test_dropping_a_table_others_refer_to_is_refused_naming_their_constraints(pgdb: peewee.Database,
                                                                              tmp_path: Path) -> None:
    migrated = pgdb
    migrate_up(migrated)
    folder = tmp_path / "migrations"
    folder.mkdir()
    for f in sorted(migrations_dir().glob("0*.py")):
        (folder / f.name).write_text(f.read_text())
    migration(folder, "0004_drop_release", 'migrator.migrate(migrator.drop_table("release"))')
    with pytest.raises(MigrationFailedError, match=r"refusing to drop table release: constraint "
                                                   r"deployment_release_id_fkey on table deployment depends on it"):
        Runner(migrated, folder).up()
    assert "release" in migrated.get_tables()


@pytest.mark.postgres
def test_dropping_an_index_renamed_by_hand_names_what_the_table_has(pgdb: peewee.Database) -> None:
    migrated = pgdb
    migrate_up(migrated)
    migrated.execute_sql('ALTER INDEX "deployment_created_at_id" RENAME TO "deployment_newest_first"')
    finding = [f for f in check(migrated, MODELS, migrations_dir()).findings if f.attribute == "name"]
    assert [str(f) for f in finding] == [
        "deployment: index (created_at, id) name: models deployment_created_at_id, migrations "
        "deployment_created_at_id, live deployment_newest_first"]
    with pytest.raises(MigrationFailedError, match=r"index 'deployment_created_at_id' does not exist \(table "
                                                   r"'deployment' has .*deployment_newest_first.*\): was it renamed"):
        Runner(migrated, migrations_dir()).down()


def test_the_shipped_migrations_run_safely_on_a_fresh_database(db: peewee.Database) -> None:
    said: list[str] = []
    assert migrate_up(db) == ["0001_initial", "0002_deployment_duration", "0003_deployment_history_indexes"]
    assert check(db, MODELS, migrations_dir()).ok
    Runner(db, migrations_dir(), progress=said.append).down(steps=2)
    Runner(db, migrations_dir(), progress=said.append).up()
    assert check(db, MODELS, migrations_dir()).ok
