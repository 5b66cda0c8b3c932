"""Several apps' migrations in one database: numbered independently, keyed by app, ordered by depends_on."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from playhouse.migrations import Runner as PeeweeRunner

from orm_kit.db import open_database
from orm_kit.errors import DataLossError, MigrationError, MigrationFailedError, MigrationRefusedError
from orm_kit.migrate import AppMigrations, Runner, baseline, check, lint, make_migration, preview_sql, verify
from orm_kit.migrate.files import discover
from orm_kit.migrate.history import RUNNING, History
from orm_kit.migrate.lock import run_claim


def write(folder: Path, name: str, table: str | None = None, *, depends_on: str = "", extra: str = "") -> Path:
    """NAME.py creating (and dropping on down) ``table`` (named after the file when not given)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = table or name.split("_", 1)[1]
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(f"""\
        {depends_on}
        {extra}

        def up(migrator, db):
            db.execute_sql('CREATE TABLE "{table}" ("id" INTEGER PRIMARY KEY)')


        def down(migrator, db):
            migrator.migrate(migrator.drop_table({table!r}))
        """))
    return path


def write_model(folder: Path, name: str, table: str, *, depends_on: str = "") -> Path:
    """NAME.py creating ``table`` as peewee creates a model with an AutoField id (what the models below have)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(f"""\
        import peewee

        {depends_on}


        def up(migrator, db):
            class Table(peewee.Model):
                class Meta:
                    database = db
                    table_name = {table!r}

            db.create_tables([Table])


        def down(migrator, db):
            migrator.migrate(migrator.drop_table({table!r}))
        """))
    return path


@pytest.fixture
def apps(tmp_path: Path) -> list[AppMigrations]:
    """platform: 0001_initial, 0002_p2; flags: 0001_initial (needs platform 0002), 0002_f2. Same first names."""
    platform, flags = tmp_path / "platform", tmp_path / "flags"
    write(platform, "0001_initial", "p_one")
    write(platform, "0002_p2")
    write(flags, "0001_initial", "f_one", depends_on='depends_on = [("platform", "0002")]')
    write(flags, "0002_f2")
    return [AppMigrations("platform", platform), AppMigrations("flags", flags)]


def names(db: peewee.Database) -> list[tuple[str, str]]:
    return [(row.app, row.name) for row in History(db).read()]


def test_apps_numbered_independently_share_one_history_keyed_by_app(db: peewee.Database,
                                                                   apps: list[AppMigrations]) -> None:
    runner = Runner(db, apps)
    assert runner.status().pending == ["platform:0001_initial", "platform:0002_p2", "flags:0001_initial",
                                       "flags:0002_f2"]
    assert runner.up() == ["platform:0001_initial", "platform:0002_p2", "flags:0001_initial", "flags:0002_f2"]
    # Two rows named 0001_initial: unique per (app, name), not per name.
    assert names(db) == [("platform", "0001_initial"), ("platform", "0002_p2"), ("flags", "0001_initial"),
                         ("flags", "0002_f2")]
    status = runner.status()
    assert status.ok and status.apps == ("platform", "flags")
    assert [(m["app"], m["name"], m["state"]) for m in status.to_dict()["migrations"]] == [
        ("platform", "0001_initial", "applied"), ("platform", "0002_p2", "applied"),
        ("flags", "0001_initial", "applied"), ("flags", "0002_f2", "applied")]


def test_a_declared_dependency_decides_the_order_across_apps(db: peewee.Database, tmp_path: Path) -> None:
    # "early" comes first among equals, but its 0001 needs late's 0002: late's two run first.
    early, late = tmp_path / "early", tmp_path / "late"
    write(early, "0001_e1", depends_on='depends_on = ["late:0002_l2"]')
    write(early, "0002_e2")
    write(late, "0001_l1")
    write(late, "0002_l2")
    write(late, "0003_l3")
    apps = [AppMigrations("early", early), AppMigrations("late", late)]
    assert Runner(db, apps).up() == ["late:0001_l1", "late:0002_l2", "early:0001_e1", "early:0002_e2",
                                     "late:0003_l3"]


def test_up_to_a_target_in_another_app_applies_what_it_needs_and_nothing_else(db: peewee.Database,
                                                                                apps: list[AppMigrations]) -> None:
    runner = Runner(db, apps)
    assert runner.up("flags:0001") == ["platform:0001_initial", "platform:0002_p2", "flags:0001_initial"]
    assert runner.up("0001", app="platform") == []
    assert runner.up(app="flags") == ["flags:0002_f2"]
    with pytest.raises(MigrationError, match=r"unknown app 'nope' \(expected one of: platform, flags\)"):
        runner.up("nope:0001")


def test_a_new_platform_migration_is_not_late_for_an_apps_and_never_collides(db: peewee.Database,
                                                                              apps: list[AppMigrations]) -> None:
    runner = Runner(db, apps)
    runner.up()
    write(apps[0].directory, "0003_p3")  # the platform ships a new migration
    write(apps[1].directory, "0003_p3", "f_three")  # and the app happens to pick the same name
    assert runner.status().pending == ["platform:0003_p3", "flags:0003_p3"]
    assert runner.status().problems == ()
    assert runner.up() == ["platform:0003_p3", "flags:0003_p3"]


@pytest.mark.parametrize(("declaration", "message"), [
    ('depends_on = [("billing", "0001")]', "flags 0001_initial.py depends on app 'billing', which is not configured "
                                           "here (apps: platform, flags)"),
    ('depends_on = [("platform", "0009")]', "flags 0001_initial.py depends on platform '0009', which platform does "
                                            "not have (its migrations: 0001_initial, 0002_p2)"),
    ("depends_on = [platform_head]", "0001_initial.py: depends_on is not a literal"),
    ('depends_on = [("platform",)]', "depends_on entry ('platform',) is not an app and a migration"),
])
def test_a_bad_dependency_is_a_refusal_naming_the_file_and_nothing_runs(
        db: peewee.Database, apps: list[AppMigrations], declaration: str, message: str) -> None:
    write(apps[1].directory, "0001_initial", "f_one", depends_on=declaration)
    runner = Runner(db, apps)
    with pytest.raises(MigrationRefusedError, match="refusing to migrate, nothing was run") as caught:
        runner.up()
    assert message in str(caught.value)
    assert names(db) == [] and "p_one" not in db.get_tables()
    assert message in " ".join(runner.status().problems)


def test_a_cycle_across_apps_is_a_refusal_naming_its_files(db: peewee.Database, apps: list[AppMigrations]) -> None:
    write(apps[0].directory, "0002_p2", depends_on='depends_on = [("flags", "0002")]')
    with pytest.raises(MigrationRefusedError) as caught:
        Runner(db, apps).up()
    assert ("migrations depend on each other in a cycle: platform:0002_p2.py -> flags:0002_f2.py -> "
            "flags:0001_initial.py -> platform:0002_p2.py") in str(caught.value)
    assert names(db) == []


def test_down_works_in_one_app_and_refuses_while_another_apps_migration_depends_on_it(
        db: peewee.Database, apps: list[AppMigrations]) -> None:
    runner = Runner(db, apps)
    runner.up()
    assert runner.down() == ["flags:0002_f2"]  # the last app given is the default one
    with pytest.raises(MigrationError, match=r"cannot revert platform:0002_p2: flags:0001_initial is applied and "
                                             r"depends on it; revert that first \(orm-kit migrate down --app flags "
                                             r"--steps 1\)"):
        runner.down(app="platform")
    assert "p2" in db.get_tables()
    assert runner.down(app="flags") == ["flags:0001_initial"]
    assert runner.down(app="platform") == ["platform:0002_p2"]
    assert names(db) == [("platform", "0001_initial")]


def test_rows_of_an_app_not_configured_here_are_left_alone(db: peewee.Database, apps: list[AppMigrations]) -> None:
    Runner(db, apps).up()
    platform_only = Runner(db, apps[:1])  # as the platform's own tooling, without the service's config
    status = platform_only.status()
    assert status.ok and status.other_apps == ("flags",) and status.pending == []
    write(apps[0].directory, "0003_p3")
    assert platform_only.up() == ["0003_p3"]
    with pytest.raises(MigrationError, match=r"cannot revert platform:0002_p2: flags:0001_initial was applied after "
                                             r"it, and app 'flags' is not configured here, so orm-kit cannot tell "
                                             r"whether it depends on it; run the down from the project that "
                                             r"configures 'flags'"):
        platform_only.down(steps=2)
    assert platform_only.down() == ["0003_p3"]  # applied after every flags row: nothing can depend on it


def test_an_orm_kit_history_from_before_apps_is_adopted_and_peewees_runner_still_reads_it(
        db: peewee.Database, apps: list[AppMigrations]) -> None:
    # The table as peewee's runner (and orm-kit before apps) made it: name unique, no app column.
    assert PeeweeRunner(db, str(apps[0].directory)).up() == ["0001_initial", "0002_p2"]
    assert "app" not in {c.name for c in db.get_columns("schema_migration")}
    assert Runner(db, apps).up() == ["flags:0001_initial", "flags:0002_f2"]  # a second 0001_initial fits now
    assert names(db) == [("platform", "0001_initial"), ("platform", "0002_p2"), ("flags", "0001_initial"),
                         ("flags", "0002_f2")]
    unique = [list(i.columns) for i in db.get_indexes("schema_migration") if i.unique]
    assert ["app", "name"] in unique and ["name"] not in unique
    # peewee's runner reads the platform's rows, and a row it writes is the platform's.
    write(apps[0].directory, "0003_p3")
    peewee_runner = PeeweeRunner(db, str(apps[0].directory))
    assert [m.name for m in peewee_runner.status() if m.path and not m.applied] == ["0003_p3"]
    assert peewee_runner.up() == ["0003_p3"]
    assert names(db)[-1] == ("platform", "0003_p3")
    assert Runner(db, apps).status().ok


def test_baseline_adopts_one_app_checked_against_what_the_others_have(db: peewee.Database,
                                                                      apps: list[AppMigrations]) -> None:
    Runner(db, apps[:1]).up()
    db.execute_sql('CREATE TABLE "f_one" ("id" INTEGER PRIMARY KEY)')  # the service built its table by hand
    runner = Runner(db, apps)
    with pytest.raises(MigrationRefusedError, match=r"not what the migrations up to flags:0002_f2 produce \(f2: "):
        baseline(runner, "0002", app="flags")
    assert baseline(runner, "flags:0001") == ["flags:0001_initial"]
    with pytest.raises(MigrationRefusedError, match="app flags already has a migration history"):
        baseline(runner, "0001")
    assert runner.up() == ["flags:0002_f2"]


def test_repair_takes_an_app(db: peewee.Database, apps: list[AppMigrations]) -> None:
    runner = Runner(db, apps)
    runner.up()
    for app in apps:
        edited = app.directory / "0002_p2.py" if app.name == "platform" else app.directory / "0002_f2.py"
        edited.write_text(edited.read_text() + "# edited\n")
    assert runner.repair("flags").rechecksummed == ["flags:0002_f2"]
    assert runner.repair().rechecksummed == ["platform:0002_p2"]
    with pytest.raises(MigrationError, match="unknown app 'nope'"):
        runner.repair("nope")


class FlagTable(peewee.Model):
    id = peewee.AutoField()

    class Meta:
        table_name = "f_one"


class PlatformTable(peewee.Model):
    id = peewee.AutoField()

    class Meta:
        table_name = "p_one"


def test_check_names_the_app_of_each_finding_and_calls_a_table_nobody_declares_unexpected(
        db: peewee.Database, tmp_path: Path) -> None:
    platform, flags = tmp_path / "platform", tmp_path / "flags"
    write_model(platform, "0001_initial", "p_one")
    write_model(flags, "0001_initial", "f_one", depends_on='depends_on = ["platform:0001"]')
    apps = [AppMigrations("platform", platform, (PlatformTable,)), AppMigrations("flags", flags, (FlagTable,))]
    Runner(db, apps).up()
    report = check(db, apps)
    assert report.ok and report.apps == ["platform", "flags"]
    db.execute_sql('CREATE TABLE "legacy_audit" ("id" INTEGER PRIMARY KEY)')
    db.execute_sql('CREATE INDEX "f_one_id" ON "f_one" ("id")')
    report = check(db, apps)
    assert [(f.app, f.table, f.subject) for f in report.findings] == [
        ("flags", "f_one", "index (id)"), (None, "legacy_audit", "table")]
    assert report.by_app() == {"flags": [report.findings[0]], None: [report.findings[1]]}
    assert report.findings[1].unexpected and str(report.findings[1]).startswith(
        "table legacy_audit is in the database, but no app's models or migrations declare it")
    assert report.to_dict()["findings"][0]["app"] == "flags"


class PlatformNoteRequired(peewee.Model):
    id = peewee.AutoField()
    note = peewee.CharField(max_length=20)  # NOT NULL here, NULL in the platform's migration: its drift

    class Meta:
        table_name = "p_one"


class FlagWithLabel(peewee.Model):
    id = peewee.AutoField()
    label = peewee.CharField(max_length=20, null=True)
    about = peewee.ForeignKeyField(PlatformNoteRequired, null=True, on_delete="SET NULL")  # the platform's table

    class Meta:
        table_name = "f_one"
        # Index names from the table, as orm_kit.Model names them and the migrator does (check compares index
        # names: a migration drops an index by name); peewee's legacy naming would use the class name.
        legacy_table_names = False


def test_make_writes_only_the_apps_changes_into_its_folder_depending_on_the_other_heads(
        db: peewee.Database, tmp_path: Path) -> None:
    platform, flags = tmp_path / "platform", tmp_path / "flags"
    write_model(platform, "0001_initial", "p_one")
    write(platform, "0002_p2", extra="import peewee")  # the platform's models below do not know p2
    (platform / "0003_note.py").write_text(
        "import peewee\n\n\ndef up(migrator, db):\n    migrator.migrate(migrator.add_column('p_one', 'note', "
        "peewee.CharField(max_length=20, null=True)))\n\n\ndef down(migrator, db):\n"
        "    migrator.migrate(migrator.drop_column('p_one', 'note'))\n")
    write_model(flags, "0001_initial", "f_one", depends_on='depends_on = ["platform:0001"]')
    apps = [AppMigrations("platform", platform, (PlatformNoteRequired,)),
            AppMigrations("flags", flags, (FlagWithLabel,))]
    assert make_migration(db, apps, "add label", app="flags") == flags / "0002_add_label.py"
    text = (flags / "0002_add_label.py").read_text()
    assert "depends_on = [('platform', '0003_note')]" in text
    # Only the app's change: nothing about the platform's drift (p_one.note) or its tables.
    assert "migrator.add_column('f_one', 'label'" in text and "migrator.add_column('f_one', 'about_id'" in text
    assert "add_not_null('p_one'" not in text and "drop_not_null('p_one'" not in text and "'p2'" not in text
    # The platform's models point at nothing of the app's: a platform migration made here depends on nothing.
    assert make_migration(db, apps, "notes", app="platform") == platform / "0004_notes.py"
    assert "depends_on" not in (platform / "0004_notes.py").read_text()
    (platform / "0004_notes.py").unlink()
    assert sorted(p.name for p in platform.glob("*.py")) == ["0001_initial.py", "0002_p2.py", "0003_note.py"]
    assert Runner(db, apps).up()[-1] == "flags:0002_add_label"
    assert make_migration(db, apps, "again", app="flags") is None
    assert [f for f in check(db, apps).findings if f.app == "flags"] == []


def test_verify_and_sql_run_every_app_in_the_runners_order(db: peewee.Database, apps: list[AppMigrations]) -> None:
    report = verify(db, apps)
    assert report.ok, report.to_dict()
    assert [s.name for s in report.steps] == ["platform:0001_initial", "platform:0002_p2", "flags:0001_initial",
                                              "flags:0002_f2"]
    plans = preview_sql(db, apps, "flags:0001")
    assert [p.name for p in plans] == ["platform:0001_initial", "platform:0002_p2", "flags:0001_initial"]
    assert plans[-1].statements == ['CREATE TABLE "f_one" ("id" INTEGER PRIMARY KEY)']
    Runner(db, apps).up()
    (down,) = preview_sql(db, apps, down=True)
    assert down.name == "flags:0002_f2"
    assert names(db)[-1] == ("flags", "0002_f2")  # a preview runs nothing


def test_a_migration_failing_on_a_scratch_database_is_named_with_its_app(db: peewee.Database,
                                                                         apps: list[AppMigrations]) -> None:
    # flags has a 0002 of the same number as platform's: the error must say whose it is.
    (apps[1].directory / "0002_f2.py").write_text("def up(migrator, db):\n    db.execute_sql('SELEC 1')\n")
    report = verify(db, apps)
    problems = [p for step in report.steps for p in step.problems]
    assert problems and problems[0].startswith("flags:0002_f2 up() fails on a scratch database: "), problems
    with pytest.raises(MigrationFailedError, match=r"^flags:0002_f2 up\(\) fails on a scratch database: "):
        check(db, apps)


def test_an_app_name_must_be_usable() -> None:
    from orm_kit.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="app name 'Flags!' is not usable"):
        AppMigrations("Flags!", Path("x"))


# --- apps meet a transaction per migration, the steps after a commit, lint and sql (issue 10) ------------


def test_down_in_one_app_stops_at_what_it_planned_while_another_apps_migration_depends_on_an_earlier_one(
        db: peewee.Database, apps: list[AppMigrations]) -> None:
    # Each migration has a transaction of its own, and the plan is read again before the next one: the
    # window "the last N of platform" has moved by then, onto 0002_p2, which flags:0001_initial needs. That
    # is not what was asked for, so it is neither reverted nor a reason to fail what was done.
    write(apps[0].directory, "0003_p3")
    runner = Runner(db, apps)
    runner.up()
    assert runner.down(app="platform") == ["platform:0003_p3"]
    assert names(db)[-1] == ("flags", "0002_f2") and "p2" in db.get_tables()
    runner.up()
    with pytest.raises(MigrationError, match=r"cannot revert platform:0002_p2: flags:0001_initial is applied"):
        runner.down(app="platform", steps=2)  # refused before anything ran
    assert ("platform", "0003_p3") in names(db)


BASE_TABLES = '''
def up(migrator, db):
    db.execute_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    db.execute_sql("INSERT INTO item (id, n) SELECT i, i FROM generate_series(1, 20) AS i")


def down(migrator, db):
    db.execute_sql("DROP TABLE item")
'''

FLAG_TABLES = '''
depends_on = [("platform", "0001")]


def up(migrator, db):
    db.execute_sql("CREATE TABLE flag (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    db.execute_sql("INSERT INTO flag (id, n) SELECT i, mod(i, 3) FROM generate_series(1, 20) AS i")


def down(migrator, db):
    db.execute_sql("DROP TABLE flag")
'''


def index_migration(table: str, unique: bool) -> str:
    return (f"def up(migrator, db):\n    migrator.migrate(migrator.add_index({table!r}, ('n',), {unique}))\n\n\n"
            f"def down(migrator, db):\n    migrator.migrate(migrator.drop_index({table!r}, '{table}_n'))\n")


@pytest.fixture
def live_apps(postgres_url: str, tmp_path: Path) -> Iterator[tuple[peewee.Database, list[AppMigrations]]]:
    """PostgreSQL; platform: 0001_tables (item), 0002_index; flags: 0001_tables (flag, 20 rows with 3 values of n,
    needs platform 0001), 0002_index (UNIQUE on flag.n: its build after the commit fails). Same names in both."""
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    platform, flags = tmp_path / "platform", tmp_path / "flags"
    for folder in (platform, flags):
        folder.mkdir()
    (platform / "0001_tables.py").write_text(BASE_TABLES)
    (platform / "0002_index.py").write_text(index_migration("item", False))
    (flags / "0001_tables.py").write_text(FLAG_TABLES)
    (flags / "0002_index.py").write_text(index_migration("flag", True))
    db = open_database(postgres_url)
    try:
        yield db, [AppMigrations("platform", platform), AppMigrations("flags", flags)]
    finally:
        db.close()


def rows_of(db: peewee.Database) -> list[tuple[str, str, str | None]]:
    return [(row.app, row.name, row.outcome) for row in History(db).read()]


@pytest.mark.postgres
def test_steps_after_a_commit_record_their_app_and_repair_finishes_them_in_that_app(
        live_apps: tuple[peewee.Database, list[AppMigrations]]) -> None:
    db, apps = live_apps
    said: list[str] = []
    runner = Runner(db, apps, progress=said.append)
    with pytest.raises(MigrationFailedError) as failure:
        runner.up()
    assert str(failure.value).startswith(
        "flags:0002_index up(): its transaction committed, but a step after it failed: CREATE UNIQUE INDEX "
        'CONCURRENTLY IF NOT EXISTS "flag_n" ON "flag" ("n"): IntegrityError')
    assert said == [
        'platform:0002_index up(): after its commit: CREATE INDEX CONCURRENTLY IF NOT EXISTS "item_n" ON "item" ("n")',
        'flags:0002_index up(): after its commit: CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "flag_n" ON "flag" '
        '("n")']
    # The two 0002_index rows are told apart by their app, through running, applied and failed.
    assert rows_of(db) == [("platform", "0001_tables", "applied"), ("platform", "0002_index", "applied"),
                           ("flags", "0001_tables", "applied"), ("flags", "0002_index", "failed")]
    assert [p for p in runner.status().problems if p.startswith("flags: 0002_index (atomic = False, or the steps")]
    assert runner.repair("platform").finished == []  # another app's unfinished run is not platform's to finish
    assert rows_of(db)[-1] == ("flags", "0002_index", "failed")
    db.execute_sql("UPDATE flag SET n = id")  # the cause: duplicates
    report = runner.repair()
    assert (report.finished, report.cleared) == (["flags:0002_index"], [])
    assert rows_of(db)[-1] == ("flags", "0002_index", "applied") and runner.status().ok
    assert [i.unique for i in db.get_indexes("flag") if i.name == "flag_n"] == [True]
    # down reverts the app's own 0002_index, and only that row goes. What it would drop cannot be worked out (the
    # migrations no longer replay on an empty database: 0001's rows break 0002's unique index), so it asks.
    with pytest.raises(DataLossError,
                       match=r"cannot tell what it would drop \(flags:0002_index up\(\) fails on a scratch"):
        runner.down(app="flags")
    assert runner.down(app="flags", allow_data_loss=True) == ["flags:0002_index"]
    assert ("platform", "0002_index", "applied") in rows_of(db) and ("flags", "0002_index", "applied") not in \
        rows_of(db)


@pytest.mark.postgres
def test_sql_previews_each_apps_migrations_with_their_settings_and_steps_after_the_commit(
        live_apps: tuple[peewee.Database, list[AppMigrations]]) -> None:
    db, apps = live_apps
    (apps[1].directory / "0002_index.py").write_text(index_migration("flag", False))  # the scratch has the rows
    Runner(db, apps).up("platform:0001")
    plans = preview_sql(db, apps)
    assert [p.name for p in plans] == ["platform:0002_index", "flags:0001_tables", "flags:0002_index"]
    assert all(p.settings[0].startswith("SET LOCAL lock_timeout = ") for p in plans)
    assert plans[0].statements == [] and plans[0].after_commit == [
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "item_n" ON "item" ("n")']
    # flag is created by flags:0001, so by flags:0002 it exists: its index is built after that commit too.
    assert plans[2].after_commit == ['CREATE INDEX CONCURRENTLY IF NOT EXISTS "flag_n" ON "flag" ("n")']
    assert [p.name for p in preview_sql(db, apps, app="platform")] == ["platform:0002_index"]


@pytest.mark.postgres
def test_lint_and_check_name_the_app_of_each_unsafe_statement(
        live_apps: tuple[peewee.Database, list[AppMigrations]]) -> None:
    db, apps = live_apps
    (apps[1].directory / "0002_index.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('CREATE INDEX item_n_by_flags ON item (n)')\n\n\n"
        "def down(migrator, db):\n    db.execute_sql('DROP INDEX item_n_by_flags')\n")
    (apps[1].directory / "0003_ignored.py").write_text(
        'lint_ignore = {"no-such-rule": "because"}\n\n\ndef up(migrator, db):\n    pass\n\n\n'
        "def down(migrator, db):\n    pass\n")
    Runner(db, apps).up("platform:0002")
    report = lint(db, apps)
    assert report.checked == ["flags:0001_tables", "flags:0002_index", "flags:0003_ignored"]
    assert [(f.migration, f.rule, f.table) for f in report.unsafe] == [
        ("flags:0002_index", "non-concurrent-index", "item")]
    assert report.problems[0].startswith("flags 0003_ignored.py: lint_ignore names 'no-such-rule'")
    assert lint(db, apps, app="platform").checked == []  # what `up --app platform` would run: nothing
    drift = check(db, apps)
    assert [(f.migration, f.rule) for f in drift.lint] == [("flags:0002_index", "non-concurrent-index")]
    assert not drift.ok and drift.to_dict()["lint"][0]["migration"] == "flags:0002_index"
    # The tables the pending migrations create belong to the app whose migration creates them.
    assert {f.table: f.app for f in drift.findings}.get("flag") == "flags"


def test_a_live_run_is_told_apart_from_a_dead_one_of_the_same_name_in_another_app(
        db: peewee.Database, tmp_path: Path) -> None:
    platform, flags = tmp_path / "platform", tmp_path / "flags"
    for folder, table in ((platform, "p"), (flags, "f")):
        write(folder, "0001_initial", f"{table}_one")
        write(folder, "0002_index", f"{table}_two", extra="atomic = False")
    apps = [AppMigrations("platform", platform), AppMigrations("flags", flags)]
    runner = Runner(db, apps)
    runner.up("platform:0001")
    runner.up("flags:0001")
    history = History(db)
    # platform's 0002_index was started by a runner that died; flags' 0002_index is being run right now.
    for app, folder in (("platform", platform), ("flags", flags)):
        history.record(discover(folder, app)[1], RUNNING, None)
    with run_claim(db):
        problems = runner.status().problems
        assert any(p.startswith("platform: 0002_index (") and "never finished (its runner died)" in p
                   for p in problems), problems
        assert any(p.startswith("flags: 0002_index (") and "right now by another runner (pid" in p
                   for p in problems), problems
        with pytest.raises(MigrationRefusedError, match=r"^flags:0002_index is being run right now by another"):
            runner.repair()
