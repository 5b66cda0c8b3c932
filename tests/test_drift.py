"""migrate check / verify / sql / make: three-way drift, round trips, SQL previews and generated migrations."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

import orm_kit
from orm_kit import CheckViolationError, Environment, UTCDateTimeField, seeding, transaction, utcnow
from orm_kit.cli import main
from orm_kit.migrate import Runner, check, discover, make_migration, preview_sql, verify
from orm_kit.migrate.lock import foreign_keys_off
from orm_kit.migrate.migrator import migrator_for
from orm_kit.migrate.snapshot import snapshot
from orm_kit.models import MODELS, Deployment, Incident, Team
from orm_kit.platform import SEED_REGISTRY as REGISTRY
from orm_kit.platform import migrate_up, migrations_dir
from orm_kit.platform import seed_dir as default_seed_dir


def alter(db: peewee.Database, *operations: Callable[[peewee.Database], object]) -> None:
    """Change the live schema by hand, outside the runner (foreign keys off, as a DBA would)."""
    with foreign_keys_off(db), db.atomic():
        for operation in operations:
            operation(db)


def change_type(db: peewee.Database) -> None:
    migrator = migrator_for(db)
    migrator.migrate(migrator.alter_column_type("team", "email", peewee.TextField(null=True)))


def drop_not_null(db: peewee.Database) -> None:
    migrator = migrator_for(db)
    migrator.migrate(migrator.drop_not_null("release", "ref"))


def drop_index(db: peewee.Database) -> None:
    migrator = migrator_for(db)
    migrator.migrate(migrator.drop_index("deployment", "deployment_environment_id_status_finished_at"))


def cascade_incidents(db: peewee.Database) -> None:
    if isinstance(db, peewee.PostgresqlDatabase):
        (name,) = db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'incident'::regclass "
            "AND pg_get_constraintdef(oid) LIKE %s", ("%caused_by_id%",)).fetchone()
        db.execute_sql(f'ALTER TABLE "incident" DROP CONSTRAINT "{name}", ADD CONSTRAINT "{name}" FOREIGN KEY '
                       '("caused_by_id") REFERENCES "deployment" ("id") ON DELETE CASCADE')
        return
    # SQLite cannot ALTER a constraint; its documented way is to edit the stored CREATE TABLE.
    db.execute_sql("PRAGMA writable_schema = ON")
    db.execute_sql("UPDATE sqlite_master SET sql = replace(sql, 'REFERENCES \"deployment\" (\"id\") ON DELETE SET "
                   "NULL', 'REFERENCES \"deployment\" (\"id\") ON DELETE CASCADE') WHERE name = 'incident'")
    db.execute_sql("PRAGMA writable_schema = OFF")


def add_default(db: peewee.Database) -> None:
    migrator = migrator_for(db)
    migrator.migrate(migrator.add_column_default("service", "description", "''"))


def drop_check(db: peewee.Database) -> None:
    if isinstance(db, peewee.PostgresqlDatabase):
        (name,) = db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = 'incident'::regclass "
            "AND pg_get_constraintdef(oid) LIKE %s", ("%resolved_at >= opened_at%",)).fetchone()
        db.execute_sql(f'ALTER TABLE "incident" DROP CONSTRAINT "{name}"')
        return
    db.execute_sql("PRAGMA writable_schema = ON")
    db.execute_sql("UPDATE sqlite_master SET sql = replace(sql, ', CHECK (\"resolved_at\" IS NULL OR "
                   "\"resolved_at\" >= \"opened_at\")', '') WHERE name = 'incident'")
    db.execute_sql("PRAGMA writable_schema = OFF")


def index_made_desc(db: peewee.Database) -> None:
    db.execute_sql('DROP INDEX "deployment_environment_id_status_finished_at"')
    db.execute_sql('CREATE INDEX "deployment_environment_id_status_finished_at" ON "deployment" '
                   '("environment_id", "status", "finished_at" DESC)')


LIVE_CHANGES = {
    "changed type": (change_type, ("team", "column email", "type"), {"TEXT"}),
    "dropped NOT NULL": (drop_not_null, ("release", "column ref", "null"), {"NULL"}),
    "missing index": (drop_index, ("deployment", "index (environment_id, status, finished_at)", "kind"), {None}),
    "changed on_delete": (cascade_incidents, ("incident", "foreign key caused_by_id", "references"),
                          {"deployment(id) ON DELETE CASCADE ON UPDATE NO ACTION"}),
    "added default": (add_default, ("service", "column description", "default"), {"''", "''::TEXT", "''::text"}),
    "dropped check": (drop_check, None, {None}),
    "index made DESC": (index_made_desc, ("deployment", "index (environment_id, status, finished_at)", "kind"),
                        {"INDEX (environment_id, status, finished_at DESC)",
                         "INDEX USING btree (environment_id, status, finished_at DESC)"}),
}


def reopened(db: peewee.Database) -> peewee.Database:
    db.close()  # SQLite re-reads an edited schema on a new connection
    db.connect()
    return db


def test_no_drift_between_shipped_models_migrations_and_a_migrated_database(migrated: peewee.Database) -> None:
    report = check(migrated, MODELS, migrations_dir())
    assert report.findings == [] and report.pending == [] and report.ok


@pytest.mark.parametrize("change", list(LIVE_CHANGES), ids=lambda c: c.replace(" ", "-"))
def test_check_catches_a_hand_made_change_to_the_live_database(migrated: peewee.Database, change: str) -> None:
    operation, key, live_values = LIVE_CHANGES[change]
    alter(migrated, operation)
    report = check(reopened(migrated), MODELS, migrations_dir())
    assert not report.ok
    (finding,) = report.findings
    assert (finding.table, finding.subject, finding.attribute) == key or (
        key is None and finding.table == "incident" and finding.subject.startswith("check ")
        and "resolved_at" in finding.subject)
    assert finding.models == finding.migrations is not None
    assert finding.live in live_values


def test_check_names_the_models_side_when_a_model_changes(migrated: peewee.Database) -> None:
    class ChangedIncident(Incident):
        caused_by = peewee.ForeignKeyField(Deployment, null=True, backref="+", on_delete="CASCADE")

        class Meta:
            table_name = "incident"

    class ChangedTeam(Team):
        email = peewee.CharField(max_length=254)  # NOT NULL now

        class Meta:
            table_name = "team"

    models = [ChangedTeam if m is Team else ChangedIncident if m is Incident else m for m in MODELS]
    report = check(migrated, models, migrations_dir())
    assert [(str(f)) for f in report.findings] == [
        "incident: foreign key caused_by_id: models deployment(id) ON DELETE CASCADE ON UPDATE NO ACTION, "
        "migrations deployment(id) ON DELETE SET NULL ON UPDATE NO ACTION, live deployment(id) ON DELETE SET NULL "
        "ON UPDATE NO ACTION",
        "team: column email null: models NOT NULL, migrations NULL, live NULL",
    ]


def test_check_reports_pending_migrations(db: peewee.Database) -> None:
    migrate_up(db, target="0001")
    report = check(db, MODELS, migrations_dir())
    assert report.pending == ["0002_deployment_duration", "0003_deployment_history_indexes"]
    assert report.findings == [] and not report.ok


def test_migrate_check_command_exits_1_with_a_readable_list_and_json(migrated: peewee.Database,
                                                                      db_url: str) -> None:
    alter(migrated, drop_index)
    migrated.close()
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "check"])
    assert result.exit_code == 1
    assert result.stdout == ("drift: deployment: index (environment_id, status, finished_at): models INDEX, "
                             "migrations INDEX, live absent\n")
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "check", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["findings"][0]["live"] is None


def test_verify_passes_on_the_shipped_migrations(db: peewee.Database) -> None:
    report = verify(db, migrations_dir(), MODELS)
    assert [s.name for s in report.steps] == ["0001_initial", "0002_deployment_duration",
                                              "0003_deployment_history_indexes"]
    assert report.ok, report.to_dict()
    assert db.get_tables() == []  # all of it happened on a scratch database


def test_verify_catches_a_down_that_forgets_something(db: peewee.Database, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_t.py").write_text(
        "def up(migrator, db):\n"
        "    db.execute_sql('CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)')\n"
        "    db.execute_sql('CREATE INDEX t_x ON t (x)')\n\n"
        "def down(migrator, db):\n"
        "    db.execute_sql('DROP INDEX t_x')\n")
    report = verify(db, folder)
    assert not report.ok
    assert report.steps[0].problems[0].startswith("t: before up absent, after down yes")


def test_sql_prints_what_up_and_down_would_run_without_running_it(db: peewee.Database) -> None:
    plans = preview_sql(db, migrations_dir())
    assert [(p.name, p.direction) for p in plans] == [("0001_initial", "up"), ("0002_deployment_duration", "up"),
                                                       ("0003_deployment_history_indexes", "up")]
    assert any(s.startswith('CREATE TABLE "deployment"') for s in plans[0].statements)
    assert db.get_tables() == []
    migrate_up(db)
    before = snapshot(db)
    (down,) = preview_sql(db, migrations_dir(), down=True)
    assert down.name == "0003_deployment_history_indexes"
    assert down.statements == ['DROP INDEX "deployment_environment_id_created_at_id"',
                               'DROP INDEX "deployment_created_at_id"']
    (down,) = preview_sql(db, migrations_dir(), target="0001", down=True)[:1]
    assert down.statements[0] == 'DROP INDEX "deployment_environment_id_created_at_id"'
    assert snapshot(db) == before


def test_make_writes_a_runnable_migration_for_a_new_column_and_todos_for_the_rest(
        migrated: peewee.Database, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))
    assert make_migration(migrated, MODELS, "nothing", folder) is None

    class SlackTeam(Team):
        slack_channel = peewee.CharField(max_length=80, null=True, index=True)
        email = peewee.TextField(null=True)

        class Meta:
            table_name = "team"

    models = [SlackTeam if m is Team else m for m in MODELS]
    path = make_migration(migrated, models, "team slack channel", folder)
    assert path is not None and path.name == "0004_team_slack_channel.py"
    text = path.read_text()
    assert "migrator.add_column('team', 'slack_channel', CharField(index=True, null=True, max_length=80))" in text
    assert "# TODO: team.email: type is" in text
    runner = Runner(migrated, folder)
    assert runner.up() == ["0004_team_slack_channel"]
    findings = check(migrated, models, folder).findings
    assert [(f.table, f.subject, f.attribute) for f in findings] == [("team", "column email", "type")]
    assert runner.down() == ["0004_team_slack_channel"]
    assert "slack_channel" not in {c.name for c in migrated.get_columns("team")}


def test_baseline_adopts_only_a_database_that_matches_the_migrations(db: peewee.Database) -> None:
    from orm_kit.errors import MigrationRefusedError
    from orm_kit.migrate import baseline

    with foreign_keys_off(db), db.atomic():
        discover(migrations_dir())[0].load().up(migrator_for(db), db)  # 0001's tables, built without the runner
    runner = Runner(db, migrations_dir())
    with pytest.raises(MigrationRefusedError, match=r"not what the migrations up to 0002_deployment_duration "
                                                    r"produce \(deployment: column duration_seconds"):
        baseline(runner, "0002")
    assert runner.history() == []
    assert baseline(runner, "0001") == ["0001_initial"]
    assert runner.up() == ["0002_deployment_duration", "0003_deployment_history_indexes"]
    assert check(db, MODELS, migrations_dir()).ok


def test_a_concurrent_index_migration_runs_outside_a_transaction_and_verifies(db: peewee.Database,
                                                                                tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))
    (folder / "0004_team_email_index.py").write_text(
        "import peewee\n\n"
        "atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction\n\n\n"
        "def up(migrator, db):\n"
        "    how = 'CONCURRENTLY ' if isinstance(db, peewee.PostgresqlDatabase) else ''\n"
        "    db.execute_sql(f'CREATE INDEX {how}team_email ON team (email)')\n\n\n"
        "def down(migrator, db):\n"
        "    db.execute_sql('DROP INDEX team_email')\n")
    report = verify(db, folder)
    assert report.ok, report.to_dict()
    (plan,) = preview_sql(db, folder, "0004")[3:]
    concurrently = "CONCURRENTLY " if isinstance(db, peewee.PostgresqlDatabase) else ""
    assert plan.statements == [f"CREATE INDEX {concurrently}team_email ON team (email)"]
    assert Runner(db, folder).up() == ["0001_initial", "0002_deployment_duration", "0003_deployment_history_indexes",
                                      "0004_team_email_index"]
    assert snapshot(db)[("team", "index (email)", "kind")] == "INDEX"


def test_check_reports_what_makes_the_runner_refuse(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))
    base = ["--database", db_url, "migrate", "--migrations", str(folder)]
    assert CliRunner().invoke(main, base).exit_code == 0
    edited = folder / "0002_deployment_duration.py"
    edited.write_text(edited.read_text() + "# edited after it was applied\n")
    result = CliRunner().invoke(main, [*base, "check"])
    assert result.exit_code == 1
    assert result.stdout.startswith("problem: 0002_deployment_duration.py was edited after it was applied")
    edited.unlink()
    result = CliRunner().invoke(main, [*base, "check", "--json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem.startswith("0002_deployment_duration is recorded as applied but 0002_deployment_duration.py is "
                              "not in")


def test_check_catches_a_trigger_only_the_live_database_has(migrated: peewee.Database) -> None:
    if isinstance(migrated, peewee.PostgresqlDatabase):
        migrated.execute_sql("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        migrated.execute_sql("CREATE TRIGGER team_touch BEFORE UPDATE ON team FOR EACH ROW EXECUTE FUNCTION touch()")
    else:
        migrated.execute_sql("CREATE TRIGGER team_touch AFTER UPDATE ON team BEGIN SELECT 1; END")
    findings = check(migrated, MODELS, migrations_dir()).findings
    if isinstance(migrated, peewee.PostgresqlDatabase):  # the trigger's function is an unexpected object too
        function = findings.pop()
        assert str(function) == "function touch(): models absent, migrations absent, live trigger"
    (finding,) = findings
    assert (finding.table, finding.subject, finding.models, finding.migrations) == (
        "team", "trigger team_touch", None, None)
    assert finding.live is not None and finding.live.startswith("CREATE TRIGGER team_touch")


def test_verify_on_sqlite_runs_on_a_copy_with_the_real_rows(tmp_path: Path) -> None:
    from orm_kit.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'live.db'}")
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_t.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)')\n\n\n"
        "def down(migrator, db):\n    db.execute_sql('DROP TABLE t')\n")
    assert Runner(db, folder).up() == ["0001_t"]
    db.execute_sql("INSERT INTO t (x) VALUES (NULL)")  # a row the next migration did not expect
    (folder / "0002_x_required.py").write_text(
        "def up(migrator, db):\n    migrator.migrate(migrator.add_not_null('t', 'x'))\n\n\n"
        "def down(migrator, db):\n    migrator.migrate(migrator.drop_not_null('t', 'x'))\n")
    before = snapshot(db)
    report = verify(db, folder)
    assert report.on == "a copy of the database (1 applied, 1 pending)"
    assert [s.name for s in report.steps] == ["0001_t", "0002_x_required"]
    assert report.steps[1].problems[0].startswith("0002_x_required up() fails on a scratch database: IntegrityError")
    assert snapshot(db) == before and db.execute_sql("SELECT count(*) FROM t").fetchone()[0] == 1
    db.execute_sql("UPDATE t SET x = 1")
    (folder / "0001_t.py").write_text((folder / "0001_t.py").read_text().replace("DROP TABLE t", "SELECT 1"))
    Runner(db, folder).repair()
    report = verify(db, folder)
    # Peeled back on the copy: 0001's down forgets the table, so its up cannot run again.
    assert report.steps[1].problems == []
    assert report.steps[0].problems == [
        "0001_t up() fails on a scratch database: OperationalError: table t already exists"]
    db.close()


def test_a_seeded_database_has_no_drift_and_verifies(migrated: peewee.Database, db_url: str) -> None:
    # The README's own journey: migrate, seed, then gate the deploy on `migrate check`.
    seeding.load(migrated, REGISTRY, default_seed_dir())
    report = check(migrated, MODELS, migrations_dir())
    assert report.ok, report
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "check"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "verify"])
    assert result.exit_code == 0, result.output


def test_a_scratch_database_leaves_nothing_behind_however_its_body_ends(db: peewee.Database) -> None:
    # A clean exit rolls the scratch transaction back on purpose; a raising body and (on PostgreSQL) an
    # aborted transaction must end the same way, with nothing committed to the live database.
    from orm_kit._sql import execute
    from orm_kit.migrate.scratch import scratch_database

    def scratch_schemas() -> list[str]:
        if not isinstance(db, peewee.PostgresqlDatabase):
            return []
        return [r[0] for r in db.execute_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", ("orm_kit_scratch%",)).fetchall()]

    live = set(db.get_tables())
    files = []
    with scratch_database(db) as scratch:
        execute(scratch, "CREATE TABLE kept_nowhere (id INTEGER)")
        files.append(scratch.database)
    def failing_body() -> None:
        with scratch_database(db) as scratch:
            execute(scratch, "CREATE TABLE kept_nowhere (id INTEGER)")
            raise RuntimeError("the body failed")

    with pytest.raises(RuntimeError):
        failing_body()
    with scratch_database(db) as scratch:
        execute(scratch, "CREATE TABLE kept_nowhere (id INTEGER)")
        with pytest.raises(peewee.DatabaseError):
            execute(scratch, "SELECT * FROM no_such_table")  # PostgreSQL: the transaction is now aborted
    assert set(db.get_tables()) == live and scratch_schemas() == []
    assert not any(Path(str(name)).exists() for name in files)


def fk_name(db: peewee.Database, table: str, column: str) -> str:
    return str(db.execute_sql("SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass "
                              "AND pg_get_constraintdef(oid) LIKE %s", (table, f"%({column})%")).fetchone()[0])


def fk_not_valid(db: peewee.Database) -> None:
    name = fk_name(db, "incident", "caused_by_id")
    db.execute_sql(f'ALTER TABLE incident DROP CONSTRAINT "{name}", ADD CONSTRAINT "{name}" FOREIGN KEY '
                   '(caused_by_id) REFERENCES deployment (id) ON DELETE SET NULL NOT VALID')


# What migrate check used to miss (PostgreSQL): each hand-made change, the fact that shows it, its live value.
PG_CHANGES = {
    "renamed index": ('ALTER INDEX "deployment_created_at_id" RENAME TO "deployment_newest_first"',
                      ("deployment", "index (created_at, id)", "name"), "deployment_newest_first"),
    "deferrable foreign key": (
        lambda db: db.execute_sql(f'ALTER TABLE incident ALTER CONSTRAINT "{fk_name(db, "incident", "caused_by_id")}" '
                                  "DEFERRABLE INITIALLY DEFERRED"),
        ("incident", "foreign key caused_by_id", "state"), "DEFERRABLE INITIALLY DEFERRED, VALID"),
    "foreign key not valid": (fk_not_valid, ("incident", "foreign key caused_by_id", "state"),
                              "NOT DEFERRABLE, NOT VALID"),
    "column collation": ('ALTER TABLE team ALTER COLUMN name TYPE VARCHAR(63) COLLATE "C"',
                         ("team", "column name", "collation"), "C"),
    "materialized view": ("CREATE MATERIALIZED VIEW team_names AS SELECT name FROM team",
                          ("team_names", "materialized view", "definition"), "SELECT team.name FROM team;"),
    "free sequence": ("CREATE SEQUENCE ticket_numbers", ("ticket_numbers", "sequence", "exists"), "yes"),
    "enum type": ("CREATE TYPE mood AS ENUM ('calm', 'busy')", ("mood", "type", "kind"), "enum ('calm', 'busy')"),
    "function": ("CREATE FUNCTION answer() RETURNS integer LANGUAGE sql AS 'SELECT 42'",
                 ("answer()", "function", "definition"), "integer"),
    "row-level security": ("ALTER TABLE team ENABLE ROW LEVEL SECURITY", ("team", "row level security", "setting"),
                           "on"),
    "policy": ("CREATE POLICY own_team ON team USING (name = current_user)", ("team", "policy own_team", "definition"),
               "PERMISSIVE FOR ALL TO PUBLIC USING (((name)::text = CURRENT_USER))"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("change", list(PG_CHANGES), ids=lambda c: c.replace(" ", "-"))
def test_check_sees_what_it_used_to_miss_on_postgres(postgres_url: str, change: str) -> None:
    from orm_kit.db import open_database

    from conftest import reset_postgres

    reset_postgres(postgres_url)
    db = open_database(postgres_url)
    try:
        migrate_up(db)
        operation, key, live = PG_CHANGES[change]
        if isinstance(operation, str):
            db.execute_sql(operation)
        else:
            operation(db)
        (finding,) = check(db, MODELS, migrations_dir()).findings
        assert (finding.table, finding.subject, finding.attribute) == key
        assert finding.live == live and finding.models == finding.migrations
    finally:
        db.close()


def test_check_sees_a_view_nobody_declared(migrated: peewee.Database) -> None:
    migrated.execute_sql("CREATE VIEW slow_deployments AS SELECT id FROM deployment WHERE duration_seconds > 600")
    (finding,) = check(migrated, MODELS, migrations_dir()).findings
    assert (finding.table, finding.subject, finding.models, finding.migrations) == (
        "slow_deployments", "view", None, None)
    assert str(finding).startswith("view slow_deployments: models absent, migrations absent, live ")


def test_make_writes_the_safe_forms_and_the_kept_default_is_no_drift(migrated: peewee.Database,
                                                                      tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))

    class RegionDeployment(Deployment):
        region = peewee.CharField(max_length=16, default="eu", index=True)

        class Meta:
            table_name = "deployment"

    models = [RegionDeployment if m is Deployment else m for m in MODELS]
    path = make_migration(migrated, models, "deployment region", folder)
    assert path is not None
    assert ("migrator.add_column('deployment', 'region', CharField(index=True, max_length=16, default='eu'))"
            in path.read_text())
    (plan,) = preview_sql(migrated, folder)
    if isinstance(migrated, peewee.PostgresqlDatabase):
        assert plan.statements == [
            "ALTER TABLE \"deployment\" ADD COLUMN \"region\" VARCHAR(16) NOT NULL DEFAULT 'eu'"]
        assert plan.after_commit == [
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "deployment_region" ON "deployment" ("region")']
    assert Runner(migrated, folder).up() == ["0004_deployment_region"]
    report = check(migrated, models, folder)
    assert report.ok, report  # the database default 'eu' is the model's own default: no drift
    assert make_migration(migrated, models, "again", folder) is None


class FreezeWindow(orm_kit.Model):
    """A new table with CHECKs on a column and across two, and Python-side defaults (no backref: tests share
    Environment)."""

    environment = peewee.ForeignKeyField(Environment, backref="+", on_delete="CASCADE")
    weekday = peewee.IntegerField(constraints=[peewee.Check('"weekday" BETWEEN 0 AND 6')])
    opens = peewee.IntegerField(default=9)
    closes = peewee.IntegerField(default=17)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        constraints = [peewee.Check('"opens" < "closes"', name="freeze_window_opens_before_closes")]


def test_make_writes_a_new_tables_checks_and_no_todo_for_python_defaults(migrated: peewee.Database,
                                                                           tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))
    FreezeWindow.bind(migrated)
    models = [*MODELS, FreezeWindow]
    path = make_migration(migrated, models, "freeze windows", folder)
    assert path is not None
    text = path.read_text()
    assert "TODO" not in text and "<function" not in text  # utcnow runs in Python: nothing to add by hand
    assert "weekday = IntegerField(constraints=[SQL('CHECK (\"weekday\" BETWEEN 0 AND 6)')])" in text
    assert ("constraints = [SQL('CONSTRAINT \"freeze_window_opens_before_closes\" CHECK (\"opens\" < \"closes\")')]"
            in text)
    assert "created_at = UTCDateTimeField()" in text
    assert Runner(migrated, folder).up() == ["0004_freeze_windows"]
    report = check(migrated, models, folder)
    assert report.ok, report  # the checks are in the database, as the models declare them
    env = Environment.create(name="Production", slug="prod", tier="production")
    with pytest.raises(CheckViolationError) as caught, transaction(migrated):
        FreezeWindow.insert(environment=env.id, weekday=3, opens=18, closes=9).execute()
    assert caught.value.constraint in ("freeze_window_opens_before_closes", None) and set(caught.value.fields) == {
        "opens", "closes"}


def test_make_writes_an_importable_default_of_a_new_column_and_a_todo_for_a_lambda(migrated: peewee.Database,
                                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))

    class ReviewedTeam(Team):
        reviewed_at = UTCDateTimeField(default=utcnow)
        token = peewee.CharField(max_length=20, null=True, default=lambda: "t")

        class Meta:
            table_name = "team"

    Team.create(name="payments")  # a row already there gets the default computed once
    models = [ReviewedTeam if m is Team else m for m in MODELS]
    path = make_migration(migrated, models, "team review", folder)
    assert path is not None
    text = path.read_text()
    assert "import orm_kit.fields\n" in text and "<function" not in text
    assert "migrator.add_column('team', 'reviewed_at', UTCDateTimeField(default=orm_kit.fields.utcnow))" in text
    assert "# TODO: team.token: its default is computed in Python (" in text and "<lambda>" in text
    assert Runner(migrated, folder).up() == ["0004_team_review"]
    (reviewed,) = migrated.execute_sql('SELECT "reviewed_at" FROM "team"').fetchall()
    assert reviewed[0] is not None
    assert check(migrated, models, folder).ok
