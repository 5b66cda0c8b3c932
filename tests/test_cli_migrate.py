"""The `orm-kit migrate ...` commands: thin wrappers, exit codes that gate a deploy, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.platform import migrations_dir


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="orm-kit")
    return result.exit_code, result.stdout, result.stderr


def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for n, table in ((1, "a"), (2, "b")):
        (folder / f"000{n}_{table}.py").write_text(
            f"def up(migrator, db):\n    db.execute_sql('CREATE TABLE {table} (id INTEGER PRIMARY KEY)')\n\n\n"
            f"def down(migrator, db):\n    migrator.migrate(migrator.drop_table('{table}'))\n")
    return folder


def sql_head(db_url: str, name: str) -> str:
    """What `migrate sql` prints before a migration's statements: on PostgreSQL, how the runner runs them."""
    if not db_url.startswith("postgres"):
        return f"-- {name} (up)\n"
    return (f"-- {name} (up): one transaction, rolled back and retried on a lock timeout (lock_timeout 0.5 s growing "
            "to 2 s over 5 attempts, statement_timeout 60 s)\nSET LOCAL lock_timeout = '500ms';\n"
            "SET LOCAL statement_timeout = '60000ms';\n")


def existing(db_url: str) -> str:
    """``db_url``, its database created empty (read-only commands refuse a SQLite file that is not there)."""
    open_database(db_url).close()
    return db_url


def test_status_gates_a_deploy_up_down_and_json(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    existing(db_url)
    base = ("--database", db_url, "migrate", "--migrations", str(folder))
    code, out, _ = run(*base, "status")
    assert code == 1 and "pending: 0001_a, 0002_b" in out
    assert run(*base, "up", "0001") == (0, "applied 0001_a\n", "")
    assert run(*base) == (0, "applied 0002_b\n", "")
    code, out, _ = run(*base, "status", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and [m["state"] for m in data["migrations"]] == ["applied", "applied"]
    assert all(len(m["recorded_checksum"]) == 64 and m["applied_at"] for m in data["migrations"])
    assert run(*base, "down", "--steps", "2") == (0, "reverted 0002_b\nreverted 0001_a\n", "")
    assert run(*base, "down") == (0, "nothing to revert\n", "")


def test_refusals_are_one_line_exit_1_and_repair_and_baseline_fix_them(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    base = ("--database", db_url, "migrate", "--migrations", str(folder))
    assert run(*base, "up", "0001")[0] == 0
    edited = folder / "0001_a.py"
    edited.write_text(edited.read_text() + "# edited\n")
    code, out, err = run(*base, "up")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "0001_a.py was edited" in err and "orm-kit migrate repair" in err
    code, out, _ = run(*base, "status")
    assert code == 1 and "problem: 0001_a.py was edited" in out
    assert run(*base, "repair") == (0, "re-recorded the checksum of 0001_a\n", "")
    assert run(*base, "up") == (0, "applied 0002_b\n", "")


def test_baseline_adopts_a_database_built_by_hand(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    base = ("--database", db_url, "migrate", "--migrations", str(folder))
    db = open_database(db_url)
    db.execute_sql("CREATE TABLE a (id INTEGER PRIMARY KEY)")
    db.close()
    code, _, err = run(*base, "up")
    assert code == 1 and "orm-kit migrate baseline NNNN" in err
    assert run(*base, "baseline", "0001_a") == (0, "recorded 0001_a (baseline)\n", "")
    assert run(*base, "up") == (0, "applied 0002_b\n", "")


def test_create_sql_verify_and_check_commands(db_url: str, direct_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    existing(db_url)
    base = ("--database", db_url, "migrate", "--migrations", str(folder))
    # The shipped migrations build indexes concurrently after a commit: through a transaction pooler (CI's
    # PgBouncer pass) they go over the direct URL, as a deployment runs them; the same URL otherwise.
    direct = ("--direct-database", direct_url)
    code, out, _ = run(*base, "create", "add team slack")
    assert code == 0 and out == f"created {folder / '0003_add_team_slack.py'}\n"
    code, out, _ = run(*base, "sql", "0001")
    assert (code, out) == (0, sql_head(db_url, "0001_a") + "CREATE TABLE a (id INTEGER PRIMARY KEY);\n")
    code, out, _ = run(*base, "verify")
    assert code == 1 and "ok 0001_a\nok 0002_b\nok 0003_add_team_slack\n" in out and "drift: " in out
    code, out, _ = run("--database", db_url, "migrate", "check")
    assert code == 1 and out == ("pending: 0001_initial, 0002_deployment_duration, 0003_deployment_history_indexes "
                                  "(run `orm-kit migrate up`)\n")
    assert run("--database", db_url, "migrate", *direct)[0] == 0
    assert run("--database", db_url, "migrate", "check") == (
        0, "no drift: models, migrations and the database agree\n", "")
    assert run("--database", db_url, "migrate", "verify")[0] == 0


def test_down_takes_steps_or_a_target_not_both(tmp_path: Path) -> None:
    code, _, err = run("--database", f"sqlite:///{tmp_path / 'x.db'}", "migrate", "down", "0001", "--steps", "1")
    assert code == 2 and "not both" in err


def test_read_only_commands_refuse_a_missing_sqlite_file_instead_of_creating_it(tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    typo = tmp_path / "typo.db"
    base = ("--database", f"sqlite:///{typo}", "migrate", "--migrations", str(folder))
    for command in (["status"], ["sql"], ["check"], ["lint"], ["verify"], ["down"], ["repair"], ["baseline", "0001"]):
        code, out, err = run(*base, *command)
        assert (code, out) == (1, ""), command
        assert err == (f"Error: database file '{typo}' does not exist (from 'sqlite:///{typo}'): check the path, or "
                       "run `orm-kit migrate` to create it\n"), command
    assert run(*base, "create", "add a table")[0] == 0  # writes a file; never touches the database
    assert run(*base, "make", "nothing")[0] == 0
    assert not typo.exists()
    code, _, err = run(*base, "up", "9999")  # refused before anything was written: no empty file is left
    assert code == 1 and err.startswith("Error: migration 9999 does not exist") and not typo.exists()
    assert run(*base, "up", "0001") == (0, "applied 0001_a\n", "")
    assert typo.exists()


def test_sql_honours_allow_out_of_order(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    (folder / "0001_a.py").rename(folder / "0003_a.py")
    base = ("--database", db_url, "migrate", "--migrations", str(folder))
    assert run(*base, "up")[0] == 0
    late = "def up(migrator, db):\n    db.execute_sql('CREATE TABLE late (id INTEGER)')\n"
    (folder / "0001_late.py").write_text(late)
    code, _, err = run(*base, "sql")
    assert code == 1 and "--allow-out-of-order" in err
    assert run("--database", db_url, "migrate", "--migrations", str(folder), "--allow-out-of-order", "sql") == (
        0, sql_head(db_url, "0001_late") + "CREATE TABLE late (id INTEGER);\n", "")


def test_a_dangling_migration_symlink_is_one_line_not_a_traceback(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    (folder / "0001_broken.py").symlink_to(tmp_path / "nowhere.py")
    code, out, err = run("--database", db_url, "migrate", "--migrations", str(folder), "up")
    assert (code, out) == (1, "") and err.startswith("Error: cannot read migration 0001_broken.py: FileNotFoundError")
    assert len(err.strip().splitlines()) == 1


def test_create_and_make_never_write_into_the_installed_package(tmp_path: Path) -> None:
    shipped = sorted(p.name for p in migrations_dir().iterdir())
    for command in (["create", "add x"], ["make", "add x"]):
        code, out, err = run("--database", f"sqlite:///{tmp_path / 'x.db'}", "migrate", *command)
        assert (code, out) == (2, ""), command
        assert "name the folder for the new file: orm-kit migrate --migrations DIR create|make NAME" in err
    assert sorted(p.name for p in migrations_dir().iterdir()) == shipped


def test_group_options_also_work_after_the_subcommand(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    assert run("--database", db_url, "migrate", "up", "--migrations", str(folder), "--lock-timeout", "5") == (
        0, "applied 0001_a\napplied 0002_b\n", "")
    code, out, _ = run("--database", db_url, "migrate", "status", "--migrations", str(folder))
    assert code == 0 and "0002_b" in out
    code, out, _ = run("--database", db_url, "migrate", "up", "--help")
    assert code == 0 and "--migrations" in out and "--lock-timeout" in out and "--allow-out-of-order" in out


def test_database_goes_before_or_after_the_subcommand(db_url: str, tmp_path: Path) -> None:
    folder = migrations(tmp_path)
    assert run("migrate", "up", "--database", db_url, "--migrations", str(folder)) == (
        0, "applied 0001_a\napplied 0002_b\n", "")
    code, out, _ = run("migrate", "--database", db_url, "status", "--migrations", str(folder))
    assert code == 0 and "0002_b" in out
    # The subcommand's value wins over the group's: the status of the right database is shown.
    code, out, _ = run("--database", f"sqlite:///{tmp_path / 'other.db'}", "migrate", "status", "--database", db_url,
                       "--migrations", str(folder))
    assert code == 0 and "[x] 0002_b" in out


@pytest.mark.parametrize(("command", "reads", "ignores"), [
    (["migrate", "create"], ["--migrations"], ["--database", "--lock-timeout", "--allow-out-of-order"]),
    (["migrate", "check"], ["--database", "--migrations", "--json"], ["--lock-timeout", "--allow-out-of-order"]),
    (["migrate", "status"], ["--database", "--migrations", "--allow-out-of-order"], ["--lock-timeout"]),
    (["migrate", "up"], ["--database", "--migrations", "--lock-timeout", "--statement-lock-timeout", "--lock-retries",
                         "--statement-timeout", "--allow-out-of-order"], ["--seeds"]),
    (["migrate", "sql"], ["--database", "--migrations", "--statement-lock-timeout", "--allow-out-of-order"],
     ["--lock-timeout"]),
    (["migrate", "lint"], ["--database", "--migrations", "--json"], ["--lock-timeout", "--statement-timeout"]),
    (["seed", "remove"], ["--database", "--dry-run"], ["--seeds", "--set", "--migrations"]),
    (["seed", "generate"], ["--database", "--deployments"], ["--seeds", "--set", "--dry-run"]),
])
def test_each_subcommand_help_lists_only_the_options_it_reads(command: list[str], reads: list[str],
                                                               ignores: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    flags = {word.rstrip(",") for line in out.splitlines() for word in line.split() if word.startswith("--")}
    assert set(reads) <= flags, out
    assert not set(ignores) & flags, out


def test_a_group_option_the_subcommand_does_not_read_is_refused(tmp_path: Path) -> None:
    code, out, err = run("migrate", "--lock-timeout", "5", "create", "x", "--migrations", str(tmp_path / "new"))
    assert (code, out) == (2, "")
    assert "--lock-timeout does not apply to `orm-kit migrate create`" in err
    assert not (tmp_path / "new").exists()  # refused before anything was written


@pytest.mark.parametrize(("args", "refused"), [
    (["seed", "--set", "demo", "remove", "demo"], "--set does not apply to `orm-kit seed remove`"),
    (["seed", "--seeds", "x", "generate"], "--seeds does not apply to `orm-kit seed generate`"),
    (["migrate", "--allow-out-of-order", "check"], "--allow-out-of-order does not apply to `orm-kit migrate check`"),
])
def test_a_refused_group_option_is_named_as_typed(args: list[str], refused: str) -> None:
    code, _, err = run(*args)
    assert code == 2 and f"Error: {refused};" in err, err
