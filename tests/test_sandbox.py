"""sandbox(): the rolled-back transaction tests run in, with on_commit behaving as it would without it.

On a fresh database per test (``migrated``), not the plugin's ``orm_kit_db``: these check the sandbox itself,
so they open and close it by hand and look at the database afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
import pytest

from orm_kit.db import open_database
from orm_kit.errors import ConfigurationError, TransactionUsageError
from orm_kit.models import Team
from orm_kit.transactions import on_commit, run_in_transaction, sandbox, transaction

import factories


def test_everything_written_inside_is_rolled_back(migrated: peewee.Database, db_url: str) -> None:
    with sandbox(migrated):
        factories.team(name="inside")
        with transaction(migrated):  # the code's own transaction: a savepoint here
            factories.team(name="committed-by-the-code")
        assert Team.select().count() == 2
        other = open_database(db_url)  # another connection never sees the sandbox's rows
        try:
            assert other.execute_sql("SELECT count(*) FROM team").fetchone()[0] == 0
        finally:
            other.close()
    assert Team.select().count() == 0
    assert not migrated.in_transaction()


def fail_in_a_block(db: peewee.Database, hook: Callable[[], object]) -> None:
    with transaction(db):
        on_commit(db, hook)
        raise KeyError("boom")


def open_block(db: peewee.Database, isolation: str) -> None:
    with transaction(db, isolation=isolation):
        pass  # pragma: no cover


def open_sandbox(db: peewee.Database) -> None:
    with sandbox(db):
        pass  # pragma: no cover


def test_hooks_run_when_the_codes_outermost_block_ends_well(migrated: peewee.Database) -> None:
    ran: list[str] = []
    with sandbox(migrated) as box:
        with transaction(migrated):
            on_commit(migrated, lambda: ran.append("outer"))
            with transaction(migrated):
                on_commit(migrated, lambda: ran.append("inner"))
            assert ran == []  # not yet: the code's outermost block has not "committed"
        assert ran == ["outer", "inner"]
        with pytest.raises(KeyError):
            fail_in_a_block(migrated, lambda: ran.append("rolled back"))
        with migrated.atomic():  # a plain peewee block at the top counts as a transaction too
            on_commit(migrated, lambda: ran.append("plain atomic"))
        on_commit(migrated, lambda: ran.append("outside any block: at once"))
        assert ran == ["outer", "inner", "plain atomic", "outside any block: at once"]
        assert len(box.hooks) == 4


def test_hooks_can_be_collected_without_running(migrated: peewee.Database) -> None:
    ran: list[str] = []
    with sandbox(migrated, run_hooks=False) as box:
        with transaction(migrated):
            on_commit(migrated, lambda: ran.append("collected"))
        assert ran == []
        assert len(box.hooks) == 1
        box.hooks[0]()
    assert ran == ["collected"]


def test_isolation_of_the_codes_outermost_block_is_not_applied(migrated: peewee.Database) -> None:
    with sandbox(migrated):
        # The code under test asks for SERIALIZABLE: its block is a savepoint in the test's transaction.
        assert run_in_transaction(migrated, lambda: factories.team(name="t").name, isolation="serializable") == "t"
        with transaction(migrated), pytest.raises(ConfigurationError, match="only be set on the outermost"):
            open_block(migrated, "serializable")  # nested deeper: refused, as without the sandbox
        with pytest.raises(ConfigurationError, match="not a transaction isolation level"):
            open_block(migrated, "dirty")


def test_the_sandbox_must_be_outermost(migrated: peewee.Database) -> None:
    with migrated.atomic(), pytest.raises(TransactionUsageError, match="must be the outermost"):
        open_sandbox(migrated)
    with sandbox(migrated), pytest.raises(TransactionUsageError, match="must be the outermost"):
        open_sandbox(migrated)
    with sandbox(migrated):  # usable again after both refusals
        factories.team(name="again")
    assert Team.select().count() == 0


def test_a_failing_test_body_still_rolls_back(migrated: peewee.Database) -> None:
    def failing_test() -> None:
        with sandbox(migrated):
            factories.team(name="doomed")
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    assert Team.select().count() == 0
    with sandbox(migrated):
        assert Team.select().count() == 0
