"""`orm-kit shell`, `orm-kit dbshell`, `orm-kit schema diagram` and `--echo`, run for real.

The shells run as child processes of the installed `orm-kit` command with their input fed on stdin, as a
person would type it; dbshell's psql is asked for its own command line and environment (/proc), so the
test sees exactly what other users of the machine could.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import peewee
import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.dbshell import client
from orm_kit.diagram import dot, mermaid
from orm_kit.errors import ClientMissingError
from orm_kit.models import MODELS

ORM_KIT = Path(sys.executable).parent / "orm-kit"


def run(args: list[str], stdin: str = "", env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # The test server's URL (with its password) stays out: the children get the URL on their command line only.
    inherited = {k: v for k, v in os.environ.items() if k != "ORM_KIT_TEST_POSTGRES_URL"}
    environment = {**inherited, "ORM_KIT_DATABASE_URL": "", "DATABASE_URL": "", **(env or {})}
    return subprocess.run([str(ORM_KIT), *args], input=stdin, capture_output=True, text=True, env=environment,
                          cwd=cwd, timeout=120, check=False)


def password_of(url: str) -> str:
    password = urlsplit(url).password
    assert password, "the test server's URL should carry a password"
    return password


# --- schema diagram ---------------------------------------------------------------------------------------

def test_schema_diagram_prints_the_platforms_models() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["schema", "diagram"]).output == mermaid(MODELS)
    assert runner.invoke(main, ["schema", "diagram", "--format", "dot"]).output == dot(MODELS)
    refused = runner.invoke(main, ["schema", "diagram", "--format", "svg"])
    assert refused.exit_code == 2 and "'svg' is not one of 'mermaid', 'dot'" in refused.output


# --- --echo -----------------------------------------------------------------------------------------------

def test_echo_prints_each_statement_with_its_duration_never_the_password(migrated: peewee.Database,
                                                                        db_url: str) -> None:
    result = CliRunner().invoke(main, ["--echo", "--database", db_url, "seed", "--set", "reference"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("sql ") and " ms  " in result.stderr
    assert 'INSERT INTO "team"' in result.stderr and "'payments'" in result.stderr
    later = CliRunner().invoke(main, ["migrate", "status", "--database", db_url, "--echo"])
    assert later.exit_code == 0, later.output
    assert 'FROM "schema_migration"' in later.stderr and "[x] 0001_initial" in later.stdout
    assert "sql " not in later.stdout  # the SQL goes to stderr, the report stays clean on stdout
    quiet = CliRunner().invoke(main, ["migrate", "status", "--database", db_url])
    assert quiet.stderr == ""
    if db_url.startswith("postgresql"):
        assert password_of(db_url) not in result.stderr + later.stderr


def test_echo_is_refused_where_no_database_is_read() -> None:
    result = CliRunner().invoke(main, ["migrate", "--echo", "create", "x"])
    assert result.exit_code == 2 and "--echo does not apply to `main migrate create`" in result.output


# --- shell ------------------------------------------------------------------------------------------------

@pytest.fixture
def seeded_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shell.db'}"
    assert run(["--database", url, "migrate"]).returncode == 0
    assert run(["--database", url, "seed", "--set", "reference"]).returncode == 0
    return url


def test_shell_uses_ipython_with_the_models_and_repositories(seeded_file: str, tmp_path: Path) -> None:
    typed = ("print('teams:', Team.select().count())\n"
             "print('found:', teams.find_by_name('payments').name)\n"
             "print('repo:', type(services).__name__, db is services.db)\n")
    result = run(["shell", "--database", seeded_file], typed, env={"IPYTHONDIR": str(tmp_path / "ipython")})
    assert result.returncode == 0, result.stderr
    assert "orm-kit shell on sqlite:///" in result.stdout
    assert "In [1]:" in result.stdout  # IPython's prompt (it is installed with the dev extras)
    assert "teams: 11" in result.stdout and "found: payments" in result.stdout
    assert "repo: ServiceRepository True" in result.stdout


def test_shell_without_ipython_is_the_standard_prompt(seeded_file: str) -> None:
    typed = "print('envs:', environments.count())\n"
    plain = run(["shell", "--interface", "python", "--database", seeded_file], typed)
    assert plain.returncode == 0 and "envs: 6" in plain.stdout and "In [1]" not in plain.stdout
    # With IPython not importable at all, `auto` falls back to the same prompt.
    code = ("import sys; sys.modules['IPython'] = None; sys.argv = ['orm-kit', 'shell', '--database', "
            f"{seeded_file!r}]; from orm_kit.cli import main; main()")
    fallback = subprocess.run([sys.executable, "-c", code], input=typed, capture_output=True, text=True,
                              check=False, timeout=60)
    assert fallback.returncode == 0, fallback.stderr
    assert "envs: 6" in fallback.stdout and "In [1]" not in fallback.stdout
    asked = run(["shell", "-i", "ipython", "--database", seeded_file])
    assert asked.returncode == 0  # installed here: the explicit choice works


def test_shell_runs_a_command_and_refuses_a_missing_file(seeded_file: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["shell", "--database", seeded_file, "-c",
                                       "print(sorted(t.name for t in Team.select())[:2])"])
    assert result.exit_code == 0 and result.output == "['analytics', 'checkout']\n"
    missing = CliRunner().invoke(main, ["shell", "--database", f"sqlite:///{tmp_path / 'nope.db'}", "-c", "1"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert not (tmp_path / "nope.db").exists()


# --- dbshell ----------------------------------------------------------------------------------------------

def test_dbshell_opens_sqlite3(seeded_file: str) -> None:
    result = run(["dbshell", "--database", seeded_file], "SELECT count(*) FROM environment;\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6"
    passed = run(["dbshell", "--database", seeded_file, "--", "-cmd", "SELECT 40 + 2"], "")
    assert passed.stdout.strip() == "42"


def test_dbshell_refuses_an_argument_no_command_line_can_carry(seeded_file: str) -> None:
    from click.testing import CliRunner

    from orm_kit.cli import main

    result = CliRunner().invoke(main, ["dbshell", "--database", seeded_file, "--", "-cmd", "SELECT 1\x00"])
    assert result.exit_code == 1 and not isinstance(result.exception, ValueError), repr(result.exception)
    assert "holds a NUL byte" in result.output and len(result.output.strip().splitlines()) == 1


def test_dbshell_gives_psql_the_password_through_a_file_never_argv(postgres_url: str, tmp_path: Path) -> None:
    secret = password_of(postgres_url)
    typed = ("SELECT 'user=' || current_user;\n"
             "\\! cat /proc/$PPID/cmdline > cmdline\n"  # $PPID of psql's shell is psql itself
             "\\! cat /proc/$PPID/environ > environ\n"
             "\\! cat \"$PGPASSFILE\" > passfile\n")
    env = {"PGPASSWORD": "a-stale-password-from-the-environment"}
    result = run(["dbshell", "--database", postgres_url], typed, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "user=orm_kit" in result.stdout  # logged in: the password file worked
    argv = (tmp_path / "cmdline").read_bytes().split(b"\0")
    environ = dict(item.split(b"=", 1) for item in (tmp_path / "environ").read_bytes().split(b"\0") if b"=" in item)
    assert any(arg.endswith(b"psql") for arg in argv)
    assert secret.encode() not in b" ".join(argv) and b"orm_kit@127.0.0.1" in b" ".join(argv)
    assert b"PGPASSWORD" not in environ and secret.encode() not in b" ".join(environ.values())
    passfile = Path(environ[b"PGPASSFILE"].decode())
    assert secret in (tmp_path / "passfile").read_text()  # it held the password while psql ran...
    assert not passfile.exists() and not passfile.parent.exists()  # ...and is gone now


def test_dbshell_without_the_client_says_how_to_install_it(seeded_file: str, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run(["dbshell", "--database", seeded_file], env={"PATH": str(empty)})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: sqlite3 (the SQLite command-line shell) is not installed or not on PATH: install it "
        "(Debian/Ubuntu: apt-get install sqlite3; macOS: it comes with the system) and run orm-kit dbshell again")
    with pytest.raises(ClientMissingError, match=r"psql \(the PostgreSQL client\) is not installed"), \
            client("postgresql://app:pw@db/x", environ={"PATH": str(empty)}):
        pass  # pragma: no cover


def test_the_psql_command_line_keeps_options_but_no_password(tmp_path: Path) -> None:
    url = "postgresql://app:s3cr%2Ft@db.internal:6432/platform?sslmode=require&password=other"
    with client(url, ["-c", "SELECT 1"], environ={"PATH": os.environ["PATH"], "PGPASSWORD": "x"}) as command:
        assert command.argv[1:] == ["-c", "SELECT 1", "postgresql://app@db.internal:6432/platform?sslmode=require"]
        assert "PGPASSWORD" not in command.env
        passfile = Path(command.env["PGPASSFILE"])
        assert passfile.read_text() == "*:*:*:*:other\n"  # the query's password=, as libpq would take it
        assert oct(passfile.stat().st_mode & 0o777) == "0o600"
    assert not passfile.exists()
