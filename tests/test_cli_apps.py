"""The `orm-kit` command with a project's own app: where files go, what status and check print, which flags exist."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.db import open_database

from conftest import EXAMPLE


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="orm-kit")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example service (its package is the one already importable: same models)."""
    folder = tmp_path / "service"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "feature_flags"))
    return folder


def test_create_writes_into_the_apps_folder_and_never_into_the_installed_platform(project: Path) -> None:
    code, out, _ = run("migrate", "--project", str(project), "create", "add rollout notes")
    path = project / "migrations" / "0002_add_rollout_notes.py"
    assert (code, out) == (0, f"created {path}\n")
    text = path.read_text()
    assert "depends_on = [('platform', '0003_deployment_history_indexes')]\n\n\ndef up(migrator, db):" in text
    code, out, err = run("migrate", "--project", str(project), "create", "x", "--app", "platform")
    assert (code, out) == (2, "") and "is the installed package's own history" in err
    assert "[tool.orm-kit] in its pyproject.toml" in err


def test_status_and_check_name_each_app_and_the_unexpected(project: Path, db_url: str) -> None:
    base = ("--database", db_url, "migrate", "--project", str(project))
    open_database(db_url).close()
    code, out, _ = run(*base, "status")
    assert code == 1 and out.splitlines()[0].startswith("[ ] platform:0001_initial ")
    assert out.splitlines()[3].startswith("[ ] flags:0001_initial ")
    assert out.splitlines()[-1] == ("pending: platform:0001_initial, platform:0002_deployment_duration, "
                                    "platform:0003_deployment_history_indexes, flags:0001_initial (run `orm-kit "
                                    "migrate up`)")
    assert run(*base)[0] == 0
    db = open_database(db_url)
    db.execute_sql('CREATE TABLE "legacy_audit" ("id" INTEGER PRIMARY KEY)')
    db.execute_sql('CREATE INDEX "feature_flag_enabled" ON "feature_flag" ("enabled")')
    db.close()
    code, out, _ = run(*base, "check")
    assert code == 1
    assert out.splitlines() == [
        "drift (flags): feature_flag: index (enabled): models absent, migrations absent, live INDEX",
        "unexpected: table legacy_audit is in the database, but no app's models or migrations declare it (drop "
        "it, or declare it in an app's models and migrations and adopt it with baseline)",
    ]


def test_the_platform_alone_still_prints_as_before(db_url: str, tmp_path: Path) -> None:
    # No project: bare names, no app column, the platform's shipped migrations.
    code, out, _ = run("--database", db_url, "migrate")
    assert code == 0 and out.splitlines()[0] == "applied 0001_initial"
    code, out, _ = run("--database", db_url, "migrate", "status")
    assert code == 0 and out.splitlines()[0].startswith("[x] 0001_initial ")


@pytest.mark.parametrize(("command", "reads"), [
    (["migrate", "up"], ["--project", "--app", "--models", "--migrations"]),
    (["migrate", "make"], ["--project", "--app", "--models", "--migrations", "--database"]),
    (["migrate", "check"], ["--project", "--models", "--migrations"]),
    (["seed", "load"], ["--project", "--app", "--models", "--seeds", "--seed-registry"]),
    (["seed", "remove"], ["--project", "--seed-registry"]),
])
def test_the_project_flags_are_listed_where_they_are_read(command: list[str], reads: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    flags = {word.rstrip(",") for line in out.splitlines() for word in line.split() if word.startswith("--")}
    assert set(reads) <= flags, out


def test_a_missing_migrations_folder_is_named_and_make_creates_it(project: Path, tmp_path: Path) -> None:
    shutil.rmtree(project / "migrations")
    base = ("--database", f"sqlite:///{tmp_path / 'svc.db'}", "migrate", "--project", str(project))
    code, _, err = run(*base)
    assert code == 1 and f"migrations folder '{project / 'migrations'}' does not exist" in err
    assert "`orm-kit migrate make` creates it" in err
    code, out, _ = run(*base, "make", "initial")
    assert code == 0 and out.startswith(f"created {project / 'migrations' / '0001_initial.py'}")
    assert "depends_on = [('platform', '0003_deployment_history_indexes')]" in (
        project / "migrations" / "0001_initial.py").read_text()


def test_lint_and_sql_work_over_every_app_or_what_app_needs(project: Path, db_url: str) -> None:
    base = ("--database", db_url, "migrate", "--project", str(project))
    open_database(db_url).close()
    code, out, _ = run(*base, "lint", "--json")
    assert code == 0 and json.loads(out)["checked"] == [
        "platform:0001_initial", "platform:0002_deployment_duration", "platform:0003_deployment_history_indexes",
        "flags:0001_initial"]
    code, out, _ = run(*base, "lint", "--app", "platform", "--json")
    assert code == 0 and json.loads(out)["checked"][-1] == "platform:0003_deployment_history_indexes"
    code, out, _ = run(*base, "sql", "--app", "flags")
    headers = [line for line in out.splitlines() if line.startswith("-- ") and "after its COMMIT" not in line]
    assert code == 0 and headers[-1].startswith("-- flags:0001_initial (up)")
    assert headers[0].startswith("-- platform:0001_initial (up)")


def test_an_app_described_only_by_flags_is_made_applied_and_checked(project: Path, db_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # No pyproject.toml: --app names the app that --models and --migrations describe, on every command.
    monkeypatch.chdir(project.parent)
    (project / "pyproject.toml").unlink()
    shutil.rmtree(project / "migrations")
    own = ("--app", "flags", "--models", "feature_flags.models", "--migrations", str(project / "migrations"))
    base = ("--database", db_url, "migrate")
    code, out, err = run(*base, *own, "make", "initial")
    assert code == 0, err
    assert run(*base, *own, "up")[0] == 0
    code, out, err = run(*base, *own, "status")
    assert (code, err) == (0, "") and "flags:0001_initial" in out
    code, out, err = run(*base, *own, "check")
    assert (code, err) == (0, ""), out
    code, out, err = run(*base, *own, "verify")
    assert (code, err) == (0, ""), out
    code, out, err = run("schema", "diagram", "--app", "flags", "--models", "feature_flags.models")
    assert code == 0 and "feature_flag {" in out, err
    code, out, err = run("--database", db_url, "shell", "--app", "flags", "--models", "feature_flags.models",
                         "-c", "print(FeatureFlag.select().count())")
    assert (code, out.strip()) == (0, "0"), err
