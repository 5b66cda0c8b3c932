"""The orm-kit command: thin, one-line errors, non-zero exits, no tracebacks, no passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.models import MODELS


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, prog_name="orm-kit")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _in_a_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative sqlite:///x.db lands in the test's own folder, not the repository."""
    monkeypatch.chdir(tmp_path)


def test_migrate_creates_the_ten_tables_and_is_idempotent(db_url: str) -> None:
    code, out, err = run("--database", db_url, "migrate")
    assert code == 0
    assert out == ("applied 0001_initial\napplied 0002_deployment_duration\n"
                   "applied 0003_deployment_history_indexes\n")
    # stderr is for progress only: on PostgreSQL 0002's backfill of the table 0001 made runs in batches
    # after its commit, and the indexes on it are built concurrently
    assert all(" up(): after its commit: CREATE INDEX CONCURRENTLY " in line
               or " up(): after its commit: UPDATE \"deployment\" SET \"duration_seconds\" = " in line
               or line.endswith(" up(): backfill deployment: done, 0 rows in 0 batches")
               for line in err.splitlines()), err
    assert len(err.splitlines()) == (5 if db_url.startswith("postgres") else 0)
    code, out, _ = run("--database", db_url, "migrate")
    assert (code, out) == (0, "nothing to apply: the database is up to date\n")
    db = open_database(db_url)
    assert {m._meta.table_name for m in MODELS} <= set(db.get_tables())
    db.close()


def test_migrate_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    code, out, _ = run("migrate", env={"ORM_KIT_DATABASE_URL": url, "DATABASE_URL": ""})
    assert code == 0 and "applied 0001_initial" in out
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--database", "mysql://root:hunter2@db/x", "migrate"], "has scheme 'mysql'"),
    (["--database", "postgresql://root:hunter2@127.0.0.1:1/x", "migrate"], "cannot open database"),
    (["--database", "sqlite:///x.db", "migrate", "--migrations", "/nonexistent/dir"], "does not exist"),
    (["--database", "postgresql://root:hun/ter2@127.0.0.1/x", "migrate"], "percent-encode"),
    (["--database", "postgresql://root:hunter2@127.0.0.1:99999/x", "migrate"], "numeric port"),
    (["--database", "sqlite:///x.db?timeout=abc", "migrate"], "expected a number of seconds"),
])
def test_errors_are_one_line_with_exit_1_and_no_secret(args: list[str], expected: str) -> None:
    code, out, err = run(*args)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and expected in lines[0]
    assert "Traceback" not in err and "hunter2" not in err and "ter2" not in err


def test_bad_usage_exits_2() -> None:
    code, _, err = run("migrate", "--no-such-flag")
    assert code == 2 and "No such option" in err


def test_failing_migration_is_one_line_and_leaves_nothing(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_broken.py").write_text(
        "def up(migrator, db):\n"
        "    db.execute_sql('CREATE TABLE half (id INTEGER)')\n"
        "    db.execute_sql('THIS IS NOT SQL')\n"
    )
    code, _, err = run("--database", db_url, "migrate", "--migrations", str(folder))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    db = open_database(db_url)
    assert "half" not in db.get_tables()
    db.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_by_the_cli(url: str) -> None:
    code, out, err = run("--database", url, "migrate")
    assert (code, out) == (2, "")
    assert "in-memory SQLite database, which disappears when the command ends" in err


@pytest.mark.parametrize("command", [["seed"], ["seed", "status"], ["seed", "remove", "demo"],
                                     ["seed", "generate", "--deployments", "5"], ["seed", "remove-generated", "1"]])
def test_seed_commands_never_create_a_mistyped_sqlite_file(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "typo.db"
    code, out, err = run("--database", f"sqlite:///{typo}", *command)
    assert (code, out) == (1, "")
    assert "does not exist" in err and "run `orm-kit migrate` to create it" in err
    assert not typo.exists()


def test_seed_generate_on_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    open_database(f"sqlite:///{empty}").close()
    code, _, err = run("--database", f"sqlite:///{empty}", "seed", "generate", "--deployments", "5")
    assert code == 1 and "run `orm-kit migrate` first" in err and "Traceback" not in err
