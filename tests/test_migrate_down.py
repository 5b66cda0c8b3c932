"""`migrate down` cannot trap you, and the other migrate commands say what they mean.

Down to zero leaves a database `up` accepts (the seed records go with the tables they describe); a down that
drops tables or columns holding rows says how many and needs --yes (or yes at a terminal's prompt); --steps past
what is applied is refused; a missing target, a pending file that does not compile and a bare path given as a URL
get messages that say so; `migrate sql --dialect` shows what a new database gets with no database of yours.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.errors import DataLossError
from orm_kit.migrate import Runner
from orm_kit.platform import migrations_dir

from conftest import EXAMPLE, reset_postgres


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="orm-kit", env=env)
    return result.exit_code, result.stdout, result.stderr


def existing(db_url: str) -> str:
    open_database(db_url).close()
    return db_url


def tables(db_url: str) -> set[str]:
    db = open_database(db_url)
    try:
        return set(db.get_tables())
    finally:
        db.close()


# --- down to zero, and back -----------------------------------------------------------------------------

def test_down_to_zero_after_seeding_leaves_a_database_up_accepts(db_url: str) -> None:
    base = ("--database", db_url)
    assert run(*base, "migrate")[0] == 0 and run(*base, "seed")[0] == 0
    code, out, err = run(*base, "migrate", "down", "--steps", "3", "--yes")
    assert (code, err) == (0, "") and out.splitlines()[-1] == "reverted 0001_initial"
    assert tables(db_url) == {"schema_migration"}  # the seed records went with the tables they describe
    code, out, _ = run(*base, "seed", "status")
    assert code == 1 and [line.split()[:3] for line in out.splitlines()[:2]] == [
        ["demo", "not", "loaded"], ["reference", "not", "loaded"]]
    code, _, err = run(*base, "migrate", "baseline", "0001")
    assert code == 1 and "the database has no tables, so there is nothing to adopt at 0001_initial: run `orm-kit " \
                         "migrate up`" in err
    code, out, _ = run(*base, "migrate", "status")
    assert code == 1 and "problem" not in out
    assert run(*base, "migrate")[0] == 0
    assert run(*base, "seed") == (0, "seeded demo, reference: 232 inserted, 0 updated, 0 unchanged\n", "")
    assert run(*base, "seed", "status")[0] == 0


def test_a_partial_down_keeps_the_seed_records_and_status_counts_only_what_is_left(db_url: str) -> None:
    base = ("--database", db_url, "migrate", "--project", str(EXAMPLE))
    assert run(*base)[0] == 0
    assert run("--database", db_url, "seed", "--project", str(EXAMPLE))[0] == 0
    code, out, _ = run(*base, "down", "--app", "flags", "--yes")  # feature_flag goes; the platform stays
    assert (code, out) == (0, "reverted flags:0001_initial\n")
    code, out, err = run("--database", db_url, "seed", "status", "--project", str(EXAMPLE))
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[:-1]}
    assert err == "" and rows["demo"][:2] == ["loaded", "215"] and rows["flags:defaults"][1:3] == ["0", "rows"]


def test_a_user_table_named_like_orm_kits_own_is_not_hidden(db_url: str) -> None:
    db = open_database(db_url)
    db.execute_sql('CREATE TABLE "orm_kit_audit" ("id" INTEGER PRIMARY KEY)')  # a user's table, not bookkeeping
    db.close()
    code, out, _ = run("--database", db_url, "migrate", "status")
    assert code == 1 and "problem: the database has tables (orm_kit_audit) but no migration history" in out


# --- a down that would lose rows ------------------------------------------------------------------------

def test_a_down_dropping_rows_needs_yes_and_says_how_many(db_url: str) -> None:
    base = ("--database", db_url)
    assert run(*base, "migrate")[0] == 0 and run(*base, "seed")[0] == 0
    code, out, err = run(*base, "migrate", "down", "--steps", "2")
    assert (code, out) == (1, "")
    assert err == ("Error: refusing to revert, nothing was run: 0002_deployment_duration down() drops column "
                   "deployment.duration_seconds (111 rows hold a value); these rows would be lost: back them up, then "
                   "confirm (orm-kit migrate down --yes), or revert fewer migrations\n")
    assert run(*base, "migrate", "status")[0] == 0  # nothing was reverted, 0003 included
    assert run(*base, "migrate", "down") == (0, "reverted 0003_deployment_history_indexes\n", "")  # drops no rows
    db = open_database(db_url)
    runner = Runner(db, migrations_dir())
    with pytest.raises(DataLossError) as caught:
        runner.down(steps=2)
    assert [(loss.migration, loss.table, loss.column, loss.rows) for loss in caught.value.losses] == [
        ("0002_deployment_duration", "deployment", "duration_seconds", 111),
        ("0001_initial", "api", None, 9), ("0001_initial", "deployment", None, 114),
        ("0001_initial", "environment", None, 6), ("0001_initial", "incident", None, 6),
        ("0001_initial", "release", None, 34), ("0001_initial", "service", None, 12),
        ("0001_initial", "service_api_consumer", None, 13), ("0001_initial", "service_dependency", None, 17),
        ("0001_initial", "service_source_config", None, 10), ("0001_initial", "team", None, 11)]
    assert runner.down(steps=2, allow_data_loss=True) == ["0002_deployment_duration", "0001_initial"]
    db.close()


def test_an_empty_table_drops_without_asking(db_url: str) -> None:
    base = ("--database", db_url)
    assert run(*base, "migrate")[0] == 0
    assert run(*base, "migrate", "down", "--steps", "3") == (
        0, "reverted 0003_deployment_history_indexes\nreverted 0002_deployment_duration\nreverted 0001_initial\n", "")


def test_a_terminal_is_asked_before_rows_are_dropped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("--database", url, "migrate")[0] == 0 and run("--database", url, "seed", "--set", "reference")[0] == 0
    command = [str(Path(sys.executable).parent / "orm-kit"), "--database", url, "migrate", "down", "--steps", "3"]

    def answer(reply: bytes) -> tuple[int, str]:
        controller, terminal = os.openpty()  # stdin a real terminal, as a user's shell gives one
        try:
            process = subprocess.Popen(command, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            os.write(controller, reply)
            out, err = process.communicate(timeout=120)
        finally:
            os.close(controller)
            os.close(terminal)
        return process.returncode, out.decode() + err.decode()

    code, shown = answer(b"n\n")
    assert code == 1 and "0001_initial down() drops table team (11 rows)" in shown
    assert "These rows will be lost. Revert anyway? [y/N]" in shown and "nothing was reverted" in shown
    assert "team" in tables(url)
    code, shown = answer(b"y\n")
    assert code == 0 and "reverted 0001_initial" in shown and tables(url) == {"schema_migration"}


# --- what the commands refuse, and how they say it -------------------------------------------------------

def test_steps_past_what_is_applied_is_refused_per_app(db_url: str) -> None:
    base = ("--database", db_url, "migrate", "--project", str(EXAMPLE))
    assert run(*base)[0] == 0
    code, out, err = run(*base, "down", "--steps", "99", "--app", "platform")
    assert (code, out) == (1, "") and "--steps 99: only 3 migration(s) of app platform are applied (0001_initial, " \
                                     "0002_deployment_duration, 0003_deployment_history_indexes); pass --steps 3" in err
    code, out, err = run(*base, "down", "--steps", "2")
    assert code == 1 and "--steps 2: only 1 migration(s) of app flags are applied (0001_initial)" in err
    assert run(*base, "status")[0] == 0  # nothing reverted


def test_a_missing_target_says_it_does_not_exist(db_url: str) -> None:
    base = ("--database", existing(db_url), "migrate")
    code, _, err = run(*base, "up", "9999")
    assert code == 1 and err.startswith("Error: migration 9999 does not exist (the migrations: 0001_initial, ")
    assert "expected a number" not in err
    code, _, err = run(*base, "--project", str(EXAMPLE), "up", "flags:0042")
    assert code == 1 and "migration 0042 of app flags does not exist (the migrations of app flags: 0001_initial;" in err


def test_status_notices_a_pending_file_that_does_not_compile_and_up_runs_nothing(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_a.py").write_text("def up(migrator, db):\n    db.execute_sql('CREATE TABLE a (id INTEGER)')\n")
    (folder / "0002_b.py").write_text("def up(migrator, db)\n    pass\n")
    base = ("--database", existing(db_url), "migrate", "--migrations", str(folder))
    code, out, _ = run(*base, "status")
    assert code == 1 and "problem: 0002_b.py does not compile: SyntaxError: expected ':' (line 1): fix it" in out
    code, out, err = run(*base, "up")
    assert code == 1 and "refusing to migrate, nothing was run: 0002_b.py does not compile" in err
    assert "a" not in tables(db_url)


def test_sql_steps_without_down_is_a_usage_error(db_url: str) -> None:
    code, out, err = run("--database", existing(db_url), "migrate", "sql", "--steps", "2")
    assert (code, out) == (2, "") and "--steps counts migrations to revert, so it goes with --down" in err


# --- migrate sql --dialect: what a new database gets ----------------------------------------------------

def test_sql_for_a_new_sqlite_database_needs_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, new, err = run("migrate", "sql", "--dialect", "sqlite", env={"ORM_KIT_DATABASE_URL": "", "DATABASE_URL": ""})
    assert (code, err) == (0, "") and list(tmp_path.iterdir()) == []  # no orm_kit.db appeared
    assert new.startswith('-- 0001_initial (up)\nCREATE TABLE "team" (')
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert run("--database", existing(empty), "migrate", "sql") == (0, new, "")  # the same as on an empty file
    code, up_to, _ = run("migrate", "sql", "--dialect", "sqlite", "0001")
    assert code == 0 and up_to.count("-- ") == 1 and new.startswith(up_to)
    code, _, err = run("migrate", "sql", "--dialect", "sqlite", "--down")
    assert code == 2 and "there is nothing to revert" in err


def test_sql_for_a_new_postgres_database_only_borrows_a_server(postgres_url: str) -> None:
    reset_postgres(postgres_url)
    code, expected, _ = run("--database", postgres_url, "migrate", "sql")
    assert code == 0 and "SET LOCAL lock_timeout" in expected
    db = open_database(postgres_url)
    db.execute_sql('CREATE TABLE "legacy" ("id" INTEGER)')  # tables and no history: `sql` itself would refuse
    db.close()
    assert run("--database", postgres_url, "migrate", "sql")[0] == 1
    assert run("--database", postgres_url, "migrate", "sql", "--dialect", "postgres") == (0, expected, "")
    assert tables(postgres_url) == {"legacy"}  # nothing was left behind
    code, _, err = run("--database", "sqlite:///x.db", "migrate", "sql", "--dialect", "postgres")
    assert code == 2 and "--dialect postgres renders the SQL on a PostgreSQL server" in err
    reset_postgres(postgres_url)
