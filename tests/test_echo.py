"""SQL logging (orm_kit.echo): each statement with its duration, on real databases, secrets never shown."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import peewee
import pytest

from orm_kit.db import open_database
from orm_kit.echo import echo, echo_from_environment, format_statement, looks_secret
from orm_kit.errors import ConfigurationError
from orm_kit.models import Team
from orm_kit.repositories import ServiceRepository

import factories

SECRET = "hunter2-do-not-print"


class Account(peewee.Model):
    """A table with secret-looking columns (the platform's own tables have none)."""

    name = peewee.CharField()
    password_hash = peewee.CharField()
    api_token = peewee.CharField(null=True)


def test_each_statement_is_logged_with_its_duration(orm_kit_db: peewee.Database) -> None:
    out = io.StringIO()
    with echo(orm_kit_db, stream=out):
        factories.team(name="payments")
        ServiceRepository(orm_kit_db).find_by_name("checkout-api")
    Team.select().count()  # after the block: not logged
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("sql ") and " ms  INSERT INTO \"team\"" in lines[0] and "'payments'" in lines[0]
    assert 'FROM "service"' in lines[1] and "params: ('checkout-api'" in lines[1]
    assert float(lines[1].split()[1]) >= 0


def test_secret_values_are_masked_on_every_path(orm_kit_db: peewee.Database) -> None:
    Account.bind(orm_kit_db)
    Account.create_table()
    out = io.StringIO()
    with echo(orm_kit_db, stream=out):
        account = Account.create(name="alice", password_hash=SECRET, api_token=SECRET + "-token")
        Account.insert_many([{"name": "bob", "password_hash": SECRET, "api_token": None}] * 3).execute()
        Account.update(api_token=SECRET).where(Account.name == "alice").execute()
        Account.select().where(Account.password_hash == SECRET).count()
        Account.select().where(Account.api_token.in_([SECRET, SECRET + "x"])).count()
        Account.select().where(peewee.fn.lower(Account.password_hash) == SECRET).count()
        orm_kit_db.execute_sql('SELECT count(*) FROM "account" WHERE "name" = ? OR "password_hash" = ?'
                               .replace("?", orm_kit_db.param), ("alice", SECRET))
        account.delete_instance()
    text = out.getvalue()
    assert SECRET not in text
    assert text.count("***") >= 9
    assert "'alice'" in text and "'bob'" in text  # the rest stays readable


def test_a_failed_statement_is_logged_without_its_error_message(orm_kit_db: peewee.Database) -> None:
    out = io.StringIO()
    with echo(orm_kit_db, stream=out), pytest.raises(peewee.DatabaseError), orm_kit_db.atomic():
        orm_kit_db.execute_sql("SELECT * FROM no_such_table")
    assert "failed: " in out.getvalue() and "no_such_table" in out.getvalue()


def test_to_a_logger(orm_kit_db: peewee.Database, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.sql")
    with caplog.at_level(logging.INFO, logger="tests.sql"), echo(orm_kit_db, logger=logger):
        Team.select().count()
    assert [r.name for r in caplog.records] == ["tests.sql"] and 'FROM "team"' in caplog.records[0].getMessage()


def test_asking_twice_logs_once_and_stop_ends_it(orm_kit_db: peewee.Database) -> None:
    out = io.StringIO()
    first = echo(orm_kit_db, stream=out)
    assert echo(orm_kit_db, stream=out) is first
    Team.select().count()
    first.stop()
    Team.select().count()
    assert len(out.getvalue().splitlines()) == 1 and not first.active


@pytest.mark.parametrize(("sql", "params", "shown", "hidden"), [
    ('INSERT INTO "user" ("name", "password") VALUES (?, ?), (?, ?)', ["a", "p1", "b", "p2"], ["'a'", "'b'"],
     ["p1", "p2"]),
    ('UPDATE "t" SET "api_key" = %s WHERE ("id" = %s)', ["k", 7], ["7"], ["'k'"]),
    ("SELECT f(?) FROM secrets_table", ["x"], [], ["'x'"]),  # unplaceable in a statement naming a secret
    ("SELECT f(?) FROM plain", ["x"], ["'x'"], []),
    ("ALTER ROLE app PASSWORD 'swordfish'", None, ["PASSWORD '***'"], ["swordfish"]),
    ("SELECT ?", ["postgresql://app:swordfish@db/x"], ["postgresql://app:***@db/x"], ["swordfish"]),
    ('SELECT * FROM t WHERE "id" IN (' + ", ".join(["?"] * 50) + ")", list(range(50)), ["(50 values)", "(30 more)"],
     ["49"]),
])
def test_formatting(sql: str, params: list[object] | None, shown: list[str], hidden: list[str]) -> None:
    line = format_statement(sql, params, 0.0015)
    assert line.startswith("sql 1.50 ms  ")
    for text in shown:
        assert text in line, line
    for text in hidden:
        assert text not in line, line


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("db_password_hash", True), ("api_key", True), ("refresh_token", True),
    ("client_secret", True), ("salt", True), ("name", False), ("commit_sha", False), ("natural_key", False),
    ("author", False),
])
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_the_environment_switch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    db = open_database(url)
    try:
        assert echo_from_environment(db, {}) is None and echo_from_environment(db, {"ORM_KIT_ECHO": "0"}) is None
        on = echo_from_environment(db, {"ORM_KIT_ECHO": "1"})
        assert on is not None and on.active
        on.stop()
        with pytest.raises(ConfigurationError, match="ORM_KIT_ECHO='maybe' is not a switch; expected 1"):
            echo_from_environment(db, {"ORM_KIT_ECHO": "maybe"})
    finally:
        db.close()


def test_orm_kit_echo_turns_it_on_for_any_open_database(tmp_path: Path) -> None:
    # A service that opens its database through orm-kit: ORM_KIT_ECHO=1 alone prints its SQL to stderr.
    code = ("import orm_kit\n"
            f"db = orm_kit.connect('sqlite:///{tmp_path / 'svc.db'}')\n"
            "orm_kit.migrate_up(db)\n"
            "orm_kit.Team.create(name='payments')\n")
    env = {**os.environ, "ORM_KIT_ECHO": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout == ""
    assert 'INSERT INTO "team"' in result.stderr and "'payments'" in result.stderr
    assert 'CREATE TABLE "deployment"' in result.stderr
