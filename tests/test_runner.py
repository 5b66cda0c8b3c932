"""The migration runner on tiny migration folders: order, history, refusals, failures, down, baseline, repair."""

from __future__ import annotations

import textwrap
from pathlib import Path

import peewee
import pytest

from orm_kit.db import open_database
from orm_kit.errors import MigrationError, MigrationFailedError, MigrationRefusedError
from orm_kit.migrate import Runner, create_migration
from orm_kit.migrate.files import checksum
from orm_kit.migrate.snapshot import snapshot
from orm_kit.platform import migrate_up, migrations_dir


def write(folder: Path, name: str, up: str = "pass", down: str = "pass", header: str = "") -> Path:
    """A migration file NAME.py with the given up() and down() bodies."""
    path = folder / f"{name}.py"
    path.write_text(
        textwrap.dedent(header)
        + "\n\ndef up(migrator, db):\n" + textwrap.indent(textwrap.dedent(up).strip() or "pass", "    ")
        + "\n\n\ndef down(migrator, db):\n" + textwrap.indent(textwrap.dedent(down).strip() or "pass", "    ")
        + "\n"
    )
    return path


def create(table: str) -> str:
    return f'db.execute_sql(\'CREATE TABLE "{table}" ("id" INTEGER PRIMARY KEY, "label" VARCHAR(20))\')'


def drop(table: str) -> str:
    return f"migrator.migrate(migrator.drop_table({table!r}))"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    return path


def schema(db: peewee.Database) -> dict[tuple[str, str, str], str]:
    return snapshot(db, exclude=("schema_migration",))


def history(db: peewee.Database) -> list[tuple[str, str]]:
    return [(row.name, str(row.outcome)) for row in Runner(db, migrations_dir()).history()]


def test_applies_in_numeric_order_and_records_name_checksum_time_duration_outcome(db, folder):
    write(folder, "0010_c", create("c"))
    write(folder, "0002_b", create("b"))
    write(folder, "0001_a", create("a"))
    assert migrate_up(db, folder) == ["0001_a", "0002_b", "0010_c"]
    assert migrate_up(db, folder) == []
    rows = Runner(db, folder).history()
    assert [r.name for r in rows] == ["0001_a", "0002_b", "0010_c"]
    assert [r.checksum for r in rows] == [checksum(folder / f"{r.name}.py") for r in rows]
    assert all(r.outcome == "applied" and r.duration_ms is not None and r.applied_at is not None for r in rows)
    assert {"a", "b", "c"} <= set(db.get_tables())


def test_up_to_a_target_then_down_by_steps_and_to_a_target(db, folder):
    for n, table in ((1, "a"), (2, "b"), (3, "c")):
        write(folder, f"000{n}_{table}", create(table), drop(table))
    runner = Runner(db, folder)
    assert runner.up("0002") == ["0001_a", "0002_b"]
    assert runner.up() == ["0003_c"]
    assert runner.down() == ["0003_c"]
    assert runner.up() == ["0003_c"]
    assert runner.down(target="0001_a") == ["0003_c", "0002_b"]
    assert set(db.get_tables()) & {"a", "b", "c"} == {"a"}
    with pytest.raises(MigrationError, match=r"--steps 5: only 1 migration\(s\) are applied \(0001_a\); pass"):
        runner.down(steps=5)  # more than there is: refused, not quietly everything
    assert runner.down(steps=1) == ["0001_a"]
    assert runner.down() == []
    with pytest.raises(MigrationError, match="--steps 2: no migration is applied, so there is nothing to revert"):
        runner.down(steps=2)
    assert history(db) == []
    with pytest.raises(MigrationError, match=r"migration 0009 does not exist \(the migrations: 0001_a, 0002_b, 0003_c"):
        runner.up("0009")
    with pytest.raises(MigrationError, match="migration 'latest' does not exist: a target is a migration's number"):
        runner.up("latest")


def test_refuses_an_edited_applied_file_naming_it_and_repair_accepts_the_edit(db, folder):
    first = write(folder, "0001_a", create("a"))
    migrate_up(db, folder)
    first.write_text(first.read_text() + "# an innocent-looking edit\n")
    write(folder, "0002_b", create("b"))
    with pytest.raises(MigrationRefusedError, match=r"0001_a\.py was edited after it was applied.*migrate repair"):
        migrate_up(db, folder)
    assert "b" not in db.get_tables()
    assert Runner(db, folder).repair().rechecksummed == ["0001_a"]
    assert migrate_up(db, folder) == ["0002_b"]


def test_a_crlf_checkout_is_not_an_edit(db, folder):
    first = write(folder, "0001_a", create("a"))
    migrate_up(db, folder)
    first.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))
    assert Runner(db, folder).status().ok


def test_refuses_when_an_applied_file_is_missing(db, folder):
    write(folder, "0001_a", create("a"))
    write(folder, "0002_b", create("b"))
    migrate_up(db, folder)
    (folder / "0001_a.py").unlink()
    write(folder, "0003_c", create("c"))
    with pytest.raises(MigrationRefusedError, match=r"0001_a is recorded as applied but 0001_a\.py is not in"):
        migrate_up(db, folder)
    assert "c" not in db.get_tables()


def test_refuses_two_files_with_one_number_before_running_either(db, folder):
    write(folder, "0001_a", create("a"))
    write(folder, "0001_b", create("b"))
    with pytest.raises(MigrationRefusedError, match=r"0001_a\.py and 0001_b\.py share number 0001"):
        migrate_up(db, folder)
    assert not {"a", "b"} & set(db.get_tables())
    assert history(db) == []


def test_refuses_a_late_file_unless_out_of_order_is_allowed(db, folder):
    write(folder, "0001_a", create("a"))
    write(folder, "0003_c", create("c"))
    migrate_up(db, folder)
    write(folder, "0002_b", create("b"))
    with pytest.raises(MigrationRefusedError, match=r"0002_b\.py is numbered below 0003_c.*--allow-out-of-order"):
        migrate_up(db, folder)
    assert "b" not in db.get_tables()
    assert Runner(db, folder, allow_out_of_order=True).up() == ["0002_b"]
    assert [name for name, _ in history(db)] == ["0001_a", "0003_c", "0002_b"]


def test_refuses_tables_without_history_then_baseline_adopts_the_database(db, folder):
    db.execute_sql('CREATE TABLE "a" ("id" INTEGER PRIMARY KEY, "label" VARCHAR(20))')
    write(folder, "0001_a", create("a"))
    write(folder, "0002_b", create("b"))
    with pytest.raises(MigrationRefusedError, match=r"tables \(a\) but no migration history.*migrate baseline"):
        migrate_up(db, folder)
    runner = Runner(db, folder)
    assert runner.baseline("0001") == ["0001_a"]
    assert history(db) == [("0001_a", "baseline")]
    with pytest.raises(MigrationRefusedError, match="already has a migration history"):
        runner.baseline("0001")
    assert migrate_up(db, folder) == ["0002_b"]


def test_a_failing_migration_leaves_schema_data_and_history_as_before_it(db, folder):
    write(folder, "0001_a", create("a") + "\ndb.execute_sql(\"INSERT INTO a (id, label) VALUES (1, 'x')\")")
    write(folder, "0002_breaks", """
        import peewee
        migrator.migrate(migrator.add_column("a", "extra", peewee.IntegerField(null=True)))
        migrator.migrate(migrator.add_index("a", ("label",), True))
        db.execute_sql("UPDATE a SET label = 'changed'")
        migrator.migrate(migrator.add_not_null("a", "label"))  # a table rebuild on SQLite
        raise RuntimeError("the backfill found something unexpected")
    """)
    runner = Runner(db, folder)
    assert runner.up("0001") == ["0001_a"]
    before = schema(db)
    with pytest.raises(MigrationFailedError) as failure:
        runner.up()
    assert "0002_breaks up() failed: RuntimeError: the backfill found something unexpected" in str(failure.value)
    assert "rolled back" in str(failure.value)
    assert schema(db) == before
    assert db.execute_sql("SELECT label FROM a").fetchall() == [("x",)]
    assert history(db) == [("0001_a", "applied")]


def test_earlier_migrations_of_a_failed_run_stay_applied(db, folder):
    write(folder, "0001_a", create("a"))
    write(folder, "0002_breaks", create("b") + "\nraise ValueError('no')")
    with pytest.raises(MigrationFailedError, match=r"0002_breaks up\(\) failed.*0001_a applied before it stay so"):
        migrate_up(db, folder)
    assert history(db) == [("0001_a", "applied")]
    assert "a" in db.get_tables() and "b" not in db.get_tables()


@pytest.mark.parametrize("exit_call", ["sys.exit()", "sys.exit(0)", "sys.exit('done')", "raise SystemExit(3)"])
def test_sys_exit_inside_a_migration_fails_it_and_keeps_the_earlier_ones(db, folder, exit_call):
    write(folder, "0001_a", create("a"))
    write(folder, "0002_exits", create("b") + f"\n{exit_call}", header="import sys\n")
    write(folder, "0003_c", create("c"))
    with pytest.raises(MigrationFailedError) as failure:
        migrate_up(db, folder)
    message = str(failure.value)
    assert "0002_exits up() failed: MigrationError: up() called sys.exit(" in message, message
    assert "rolled back" in message and "0001_a applied before it stay so" in message
    assert history(db) == [("0001_a", "applied")]
    assert "a" in db.get_tables() and not {"b", "c"} & set(db.get_tables())


def test_sys_exit_inside_a_migration_is_a_one_line_cli_error(db_url, folder):
    from click.testing import CliRunner

    from orm_kit.cli import main

    write(folder, "0001_a", create("a"))
    write(folder, "0002_exits", "import sys\nsys.exit()")
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "--migrations", str(folder)])
    assert result.exit_code == 1, result.output
    assert "0002_exits up() failed: MigrationError: up() called sys.exit(None)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_failed_non_atomic_migration_is_recorded_and_blocks_until_repaired(db, folder):
    flaky = write(folder, "0001_flaky", create("half") + "\nraise RuntimeError('server went away')",
                  header="atomic = False\n")
    write(folder, "0002_b", create("b"))
    with pytest.raises(MigrationFailedError, match=r"atomic = False.*recorded as failed.*migrate repair"):
        migrate_up(db, folder)
    assert "half" in db.get_tables()  # no transaction: it really is half done
    assert history(db) == [("0001_flaky", "failed")]
    with pytest.raises(MigrationRefusedError,
                       match=r"0001_flaky \(atomic = False, or the steps after its commit\) failed.*migrate repair"):
        migrate_up(db, folder)
    # The fix: a human puts the schema back and corrects the file; repair forgets the failed attempt.
    db.execute_sql('DROP TABLE "half"')
    write(folder, "0001_flaky", create("half"), header="atomic = False\n")
    assert flaky.exists()
    assert Runner(db, folder).repair().cleared == ["0001_flaky"]
    assert migrate_up(db, folder) == ["0001_flaky", "0002_b"]
    assert history(db) == [("0001_flaky", "applied"), ("0002_b", "applied")]


def test_a_migration_without_down_cannot_be_reverted_and_nothing_runs(db, folder):
    write(folder, "0001_a", create("a"), drop("a"))
    (folder / "0002_b.py").write_text(f"def up(migrator, db):\n    {create('b')}\n")
    migrate_up(db, folder)
    with pytest.raises(MigrationRefusedError, match=r"0002_b\.py defines no down"):
        Runner(db, folder).down(steps=2)
    assert {"a", "b"} <= set(db.get_tables())


def test_a_history_table_written_by_peewees_runner_is_adopted(db, folder):
    from playhouse.migrations import Runner as PeeweeRunner

    write(folder, "0001_a", create("a"))
    assert PeeweeRunner(db, str(folder)).up() == ["0001_a"]
    write(folder, "0002_b", create("b"))
    assert migrate_up(db, folder) == ["0002_b"]
    rows = Runner(db, folder).history()
    assert [(r.name, r.outcome, r.checksum) for r in rows] == [
        ("0001_a", "applied", checksum(folder / "0001_a.py")),
        ("0002_b", "applied", checksum(folder / "0002_b.py")),
    ]
    # and peewee's runner still reads the table orm-kit writes
    assert {m.name for m in PeeweeRunner(db, str(folder)).status() if m.applied} == {"0001_a", "0002_b"}


def test_status_names_pending_and_problems(db, folder):
    write(folder, "0001_a", create("a"))
    runner = Runner(db, folder)
    assert runner.status().pending == ["0001_a"] and not runner.status().ok
    runner.up()
    assert runner.status().ok
    (folder / "0001_a.py").write_text("# gone\n")
    status = runner.status()
    assert [m.state for m in status.migrations] == ["edited"]
    assert not status.ok and "was edited" in status.problems[0]


def test_create_writes_the_next_numbered_file_that_runs_as_is(db, folder):
    write(folder, "0007_a", create("a"))
    path = create_migration(folder, "Add Slack channel!")
    assert path.name == "0008_add_slack_channel.py"
    assert migrate_up(db, folder) == ["0007_a", "0008_add_slack_channel"]


def test_a_non_atomic_migration_applies_and_reverts_between_atomic_ones(db, folder):
    write(folder, "0001_a", create("a"), drop("a"))
    write(folder, "0002_outside", create("outside"), drop("outside"), header="atomic = False\n")
    write(folder, "0003_c", create("c"), drop("c"))
    runner = Runner(db, folder)
    assert runner.up() == ["0001_a", "0002_outside", "0003_c"]
    assert history(db) == [("0001_a", "applied"), ("0002_outside", "applied"), ("0003_c", "applied")]
    assert runner.down(steps=2) == ["0003_c", "0002_outside"]
    assert history(db) == [("0001_a", "applied")]
    assert set(db.get_tables()) & {"a", "outside", "c"} == {"a"}


def test_a_database_proxy_stands_for_its_database(db, folder):
    write(folder, "0001_a", create("a"))
    proxy = peewee.DatabaseProxy()
    proxy.initialize(db)
    assert migrate_up(proxy, folder) == ["0001_a"]
    assert Runner(proxy, folder).status().ok


def test_a_history_row_changed_under_a_non_atomic_run_is_reported_not_overwritten(db, folder):
    # What a repair racing a live runner used to do: the settled outcome must land on exactly one row.
    write(folder, "0001_outside", create("outside") + '\ndb.execute_sql("DELETE FROM schema_migration")',
          header="atomic = False\n")
    with pytest.raises(MigrationError, match=r"history row of 0001_outside is no longer running.*migrate status"):
        migrate_up(db, folder)
    assert history(db) == []


def test_the_runner_refuses_to_start_inside_an_open_transaction(db, folder):
    write(folder, "0001_a", create("a"))
    with db.atomic(), pytest.raises(MigrationError, match=r"outside db\.atomic\(\)"):
        migrate_up(db, folder)
    assert "a" not in db.get_tables()


def test_a_badly_named_migration_file_is_a_problem_not_silently_skipped(db, folder):
    write(folder, "0001_a", create("a"))
    (folder / "0002-add-zz.py").write_text(f"def up(migrator, db):\n    {create('zz')}\n")
    runner = Runner(db, folder)
    status = runner.status()
    assert not status.ok
    assert status.problems == ("0002-add-zz.py is not named NNNN_slug.py (digits, an underscore, then letters, "
                               "digits or underscores), so it would never run: rename it, e.g. to 0002_add_zz.py",)
    with pytest.raises(MigrationRefusedError, match=r"0002-add-zz\.py is not named NNNN_slug\.py"):
        runner.up()
    assert history(db) == [] and "a" not in db.get_tables()


def test_a_dangling_symlink_is_a_one_line_migration_error(db, folder):
    (folder / "0001_broken.py").symlink_to(folder / "nowhere.py")
    with pytest.raises(MigrationError, match=r"cannot read migration 0001_broken\.py: FileNotFoundError: .*dangling"):
        Runner(db, folder).status()


def test_a_migration_leaving_orphan_rows_on_sqlite_is_rolled_back_with_the_fix_named(tmp_path, folder):
    from orm_kit.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'fk.db'}")
    write(folder, "0001_orphans", """
        db.execute_sql('CREATE TABLE parent (id INTEGER PRIMARY KEY)')
        db.execute_sql('CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id))')
        db.execute_sql('INSERT INTO child (parent_id) VALUES (7)')
    """)
    with pytest.raises(MigrationFailedError, match=r"point nowhere afterwards: child rowid 1 -> parent \(delete or "
                                                   r"re-point those rows"):
        migrate_up(db, folder)
    assert "child" not in db.get_tables()
    db.close()


def test_a_sqlite_table_rebuild_keeps_the_tables_triggers(tmp_path, folder):
    from orm_kit.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'trg.db'}")
    write(folder, "0001_audited", """
        db.execute_sql('CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))')
        db.execute_sql('CREATE TABLE audit (item_id INTEGER)')
        db.execute_sql('CREATE TRIGGER item_audit AFTER UPDATE ON item BEGIN INSERT INTO audit VALUES (NEW.id); END')
    """)
    write(folder, "0002_label_required", 'migrator.migrate(migrator.add_not_null("item", "label"))')  # a rebuild
    assert migrate_up(db, folder) == ["0001_audited", "0002_label_required"]
    db.execute_sql("INSERT INTO item (label) VALUES ('x')")
    db.execute_sql("UPDATE item SET label = 'y'")
    assert db.execute_sql("SELECT item_id FROM audit").fetchall() == [(1,)]
    db.close()


@pytest.mark.parametrize(("steps", "target", "message"), [
    (1, "0001_a", "pass either a number of steps or a target"),
    (0, None, r"--steps must be a whole number from 1 to 1,000,000 \(got 0\)"),
    (10**5000, None, r"--steps must be a whole number from 1 to 1,000,000 \(got <an integer of 16610 bits>\)"),
], ids=["steps-and-target", "zero-steps", "steps-of-5000-digits"])
def test_bad_down_arguments_are_refused_at_once_without_waiting_for_the_lock(db, db_url, folder, steps, target,
                                                                            message):
    from orm_kit.db import open_database
    from orm_kit.migrate.lock import migration_lock

    write(folder, "0001_a", create("a"))
    migrate_up(db, folder)
    other = open_database(db_url)
    try:
        # another runner at work: a usage error must not wait for it
        with migration_lock(other, 5), pytest.raises(MigrationError, match=message):
            Runner(db, folder, lock_timeout=0.2).down(steps=steps, target=target)
    finally:
        other.close()
    assert history(db) == [("0001_a", "applied")]


def test_each_migration_commits_on_its_own_before_the_next_begins(db, db_url, folder):
    # Seen from a second connection while 0002 runs: 0001's table and history row are committed already, so the
    # locks 0001 took ended with it, not with the whole run.
    write(folder, "0001_a", create("a"))
    write(folder, "0002_look", f"""
        from orm_kit.db import open_database
        other = open_database({db_url!r})
        try:
            tables = set(other.get_tables())
            rows = [r[0] for r in other.execute_sql("SELECT name FROM schema_migration").fetchall()]
        finally:
            other.close()
        assert "a" in tables and rows == ["0001_a"], (tables, rows)
    """)
    assert migrate_up(db, folder) == ["0001_a", "0002_look"]


FIRST_0002 = Path(__file__).resolve().parent / "data" / "0002_deployment_duration_first_release.py.txt"


def test_a_database_that_applied_0002s_first_release_sees_the_rewrite_as_applied(direct_url: str,
                                                                                  tmp_path: Path) -> None:
    # The shipped 0002 was rewritten (its backfill moved after the commit) and names the first release's
    # checksum in `supersedes`: a database that applied that release is up to date, not "edited".
    old = tmp_path / "old"
    old.mkdir()
    for f in migrations_dir().glob("000[13]_*.py"):
        (old / f.name).write_text(f.read_text())
    (old / "0002_deployment_duration.py").write_text(FIRST_0002.read_text())
    shipped = (migrations_dir() / "0002_deployment_duration.py").read_text()
    assert checksum(old / "0002_deployment_duration.py") in shipped
    db = open_database(direct_url)  # migrations run directly, past a transaction pooler if there is one
    assert Runner(db, old).up() == ["0001_initial", "0002_deployment_duration", "0003_deployment_history_indexes"]
    status = Runner(db, migrations_dir()).status()
    assert status.ok and status.problems == () and status.pending == []
    assert [m.state for m in status.migrations] == ["applied"] * 3
    # Any other earlier text is still an edit to be looked at.
    edited = tmp_path / "edited"
    edited.mkdir()
    for f in migrations_dir().glob("000*.py"):
        (edited / f.name).write_text(f.read_text())
    (edited / "0002_deployment_duration.py").write_text(FIRST_0002.read_text() + "\n# touched\n")
    fresh = Runner(db, edited)
    assert fresh.repair().rechecksummed == ["0002_deployment_duration"]  # now the recorded text is the touched one
    status = Runner(db, migrations_dir()).status()
    assert [m.state for m in status.migrations][1] == "edited"
    assert "0002_deployment_duration.py was edited after it was applied" in status.problems[0]
    db.close()


def test_supersedes_must_be_checksums_with_reasons(folder: Path) -> None:
    write(folder, "0001_a", header='supersedes = {"abc": "why"}')
    with pytest.raises(MigrationError, match=r"0001_a.py: supersedes is \"\{'abc': 'why'\}\"; expected a literal dict"):
        Runner(peewee.SqliteDatabase(":memory:"), folder).status()
