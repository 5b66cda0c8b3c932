"""Connection: URL resolution, SQLite settings, typed errors, and passwords that never show."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee
import pytest

from orm_kit.db import DEFAULT_URL, open_database, redact_url, resolve_migration_url, resolve_url
from orm_kit.errors import ConfigurationError, DatabaseUnavailableError


def test_url_precedence() -> None:
    env = {"ORM_KIT_DATABASE_URL": "sqlite:///a.db", "DATABASE_URL": "sqlite:///b.db"}
    assert resolve_url("sqlite:///x.db", env) == "sqlite:///x.db"
    assert resolve_url(None, env) == "sqlite:///a.db"
    assert resolve_url(None, {"DATABASE_URL": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert resolve_url(None, {}) == DEFAULT_URL == "sqlite:///orm_kit.db"
    assert resolve_url("", {"ORM_KIT_DATABASE_URL": ""}) == DEFAULT_URL


def test_migrations_take_the_direct_url_unless_a_url_is_given_for_the_command() -> None:
    pooled, direct = "postgresql://app@bouncer:6432/p?pgbouncer=transaction", "postgresql://app@db:5432/p"
    env = {"ORM_KIT_DATABASE_URL": pooled, "ORM_KIT_DIRECT_DATABASE_URL": direct}
    assert resolve_migration_url(None, None, env) == direct
    assert resolve_url(None, env) == pooled  # the application keeps its pooler
    assert resolve_migration_url("postgresql://app@other/p", None, env) == "postgresql://app@other/p"
    # --database names the database for this command: never the environment's direct URL of another one.
    assert resolve_migration_url(None, "sqlite:///local.db", env) == "sqlite:///local.db"
    assert resolve_migration_url(direct, pooled, {}) == direct
    assert resolve_migration_url(None, None, {"ORM_KIT_DATABASE_URL": pooled}) == pooled
    assert resolve_migration_url(None, None, {"ORM_KIT_DIRECT_DATABASE_URL": ""}) == DEFAULT_URL


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:s3cret@db:5432/platform", "postgresql://app:***@db:5432/platform"),
    ("postgresql://app:p%40ss@db/platform", "postgresql://app:***@db/platform"),
    ("postgresql://app@db/platform?password=s3cret&sslmode=require",
     "postgresql://app@db/platform?password=***&sslmode=require"),
    ("sqlite:///orm_kit.db", "sqlite:///orm_kit.db"),
    # Unencoded '/', '?', '#' or '@' in a password must not fool the masking.
    ("postgresql://app:5432/Zx9secret@127.0.0.1:1/db", "postgresql://app:***@127.0.0.1:1/db"),
    ("postgresql://app:a?b#c@db/platform", "postgresql://app:***@db/platform"),
    ("postgresql://app:a@b@db/platform", "postgresql://app:***@db/platform"),
    ("postgresql://app@db/platform?application_name=a@b", "postgresql://app@db/platform?application_name=a@b"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_sqlite_settings(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    assert db.pragma("foreign_keys") == 1
    assert db.pragma("journal_mode") == "wal"
    assert db.pragma("synchronous") == 1  # NORMAL
    assert db.pragma("busy_timeout") >= 5000
    db.close()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u:topsecret@h/db", "has scheme 'mysql'; expected sqlite:///"),
    ("nonsense", "is a file path, not a URL: did you mean sqlite:///nonsense (sqlite: and three slashes"),
    ("/var/lib/platform.db", "did you mean sqlite:////var/lib/platform.db (sqlite: and three slashes"),
    ("postgresql://u:topsecret@127.0.0.1:1/", "names no database"),
    ("sqlite://host/x.db", "takes three slashes"),
    ("postgresql://app:5432/topsecret@127.0.0.1:1/db", "percent-encode"),
    ("postgresql://app:top/secret@127.0.0.1/db", "percent-encode"),
    ("postgresql://app:topsecret@127.0.0.1:99999/db", "numeric port"),
    ("sqlite:///x.db?timeout=abc", "expected a number of seconds"),
    ("sqlite:///x.db?foo=1", "unknown SQLite option(s) foo"),
])
def test_bad_urls_give_configuration_errors_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_database(url)
    assert message in str(caught.value)
    assert "topsecret" not in str(caught.value)


def test_unreachable_server_names_the_url_with_its_password_masked() -> None:
    with pytest.raises(DatabaseUnavailableError) as caught:
        open_database("postgresql://app:topsecret@127.0.0.1:1/platform")
    text = str(caught.value)
    assert "postgresql://app:***@127.0.0.1:1/platform" in text
    assert "topsecret" not in text
    assert caught.value.__cause__ is None and caught.value.__context__ is None and caught.value.__suppress_context__


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.postgres
def test_wrong_password_is_refused_and_never_printed(postgres_url: str) -> None:
    bad = _with_password(postgres_url, "wrong-pass-XYZ")
    with pytest.raises(DatabaseUnavailableError) as caught:
        open_database(bad)
    assert "wrong-pass-XYZ" not in str(caught.value)
    assert "***" in str(caught.value)
    assert "password authentication failed" in str(caught.value)


@pytest.mark.postgres
def test_postgres_uses_psycopg3(postgres_url: str) -> None:
    db = open_database(postgres_url)
    assert isinstance(db, peewee.PostgresqlDatabase) and type(db).__name__ == "PostgresDatabase"
    assert db.execute_sql("SHOW server_version").fetchone()[0].startswith("15")
    db.close()


def _writer(url: str, worker: int, rows: int) -> None:
    db = open_database(url)
    for i in range(rows):
        with db.atomic():
            value = db.execute_sql("SELECT COALESCE(MAX(n), 0) FROM counter").fetchone()[0]
            db.execute_sql("INSERT INTO counter (n, worker) VALUES (?, ?)", (value + 1, f"{worker}-{i}"))
    db.close()


def test_concurrent_sqlite_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    db = open_database(url)
    db.execute_sql("CREATE TABLE counter (n INTEGER UNIQUE, worker TEXT)")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    # Read-then-write inside each transaction never lost an increment: the lock was taken at BEGIN.
    assert db.execute_sql("SELECT COUNT(*), MAX(n) FROM counter").fetchone() == (160, 160)
    db.close()


def test_threads_share_nothing_but_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    db = open_database(url)
    db.execute_sql("CREATE TABLE counter (n INTEGER UNIQUE, worker TEXT)")
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            _writer(url, worker, 25)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.execute_sql("SELECT COUNT(*) FROM counter").fetchone()[0] == 100
    assert isinstance(db, peewee.SqliteDatabase)


def test_sqlite_in_a_missing_folder_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailableError) as caught:
        open_database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert "check that the folder exists and is writable" in str(caught.value)


def test_missing_driver_is_a_typed_error_naming_the_extra() -> None:
    # A fresh interpreter in which psycopg cannot be imported, as on a machine without the extra.
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from orm_kit.db import open_database\n"
        "from orm_kit.errors import DriverMissingError\n"
        "try:\n"
        "    open_database('postgresql://app:topsecret@127.0.0.1:5432/platform')\n"
        "except DriverMissingError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'orm-kit[postgres]'" in out
    assert "postgresql://app:***@127.0.0.1:5432/platform" in out and "topsecret" not in out
