"""BulkWriter: a context manager that flushes on exit and discards on error; COPY and prepared INSERTs agree."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import peewee
import pytest

from orm_kit.bulk import BulkWriter
from orm_kit.errors import ValidationError
from orm_kit.models import Deployment, Environment, Service, Team

import factories

UTC = datetime.UTC
T0 = datetime.datetime(2026, 5, 1, tzinfo=UTC)
FIELDS = ["id", "service", "environment", "status", "triggered_by", "created_at", "started_at", "finished_at"]


def rows(svc: Service, env: Environment, count: int, bad_at: int | None = None) -> Iterator[tuple[Any, ...]]:
    for n in range(count):
        start = T0 + datetime.timedelta(minutes=n)
        yield (uuid.UUID(int=n + 1), str(svc.id) if n % 2 else svc.id, env.id,
               "done" if n == bad_at else ("success", "failed")[n % 2], f"bot-{n}" if n % 3 else None,
               start, start, start + datetime.timedelta(seconds=n))


def stored() -> list[tuple[Any, ...]]:
    return [(d.id, d.service_id, d.environment_id, d.status, d.triggered_by, d.created_at, d.started_at,
             d.finished_at, d.duration_seconds, d.lock_version) for d in Deployment.select().order_by(Deployment.id)]


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_the_context_manager_flushes_on_exit(migrated: peewee.Database, copy: bool, backend: str) -> None:
    svc, env = factories.service(), factories.environment()
    with BulkWriter(migrated, max_rows=7, copy=copy) as writer:
        writer.table(Deployment, FIELDS)
        for row in rows(svc, env, 30):
            writer.add(Deployment, row)
        assert writer.written(Deployment) == 28  # four full chunks; two rows wait for the exit
    assert writer.written(Deployment) == 30
    assert writer.copy is (copy and backend == "postgres")
    found = stored()
    assert len(found) == 30
    assert found[5] == (uuid.UUID(int=6), svc.id, env.id, "failed", "bot-5", T0 + datetime.timedelta(minutes=5),
                        T0 + datetime.timedelta(minutes=5), T0 + datetime.timedelta(minutes=5, seconds=5), 5, 1)


def test_copy_and_inserts_write_the_same_rows(migrated: peewee.Database) -> None:
    svc, env = factories.service(), factories.environment()
    written = {}
    for copy in (True, False):
        with migrated.atomic() as txn:
            with BulkWriter(migrated, max_rows=16, copy=copy) as writer:
                writer.table(Deployment, FIELDS)
                for row in rows(svc, env, 50):
                    writer.add(Deployment, row)
            written[copy] = stored()
            txn.rollback()
    assert written[True] == written[False] and len(written[True]) == 50


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_an_error_discards_what_waits_and_the_transaction_takes_back_the_rest(migrated: peewee.Database,
                                                                              copy: bool) -> None:
    svc, env = factories.service(), factories.environment()
    writer = BulkWriter(migrated, max_rows=10, copy=copy)

    def load() -> None:
        with migrated.atomic(), writer:
            writer.table(Deployment, FIELDS)
            for row in rows(svc, env, 40, bad_at=23):
                writer.add(Deployment, row)

    with pytest.raises(ValidationError) as caught:
        load()
    assert caught.value.row == 23 and caught.value.errors == {
        "status": ["must be one of created, running, success, failed, canceled, skipped, blocked (got 'done')"]}
    assert writer.written(Deployment) == 20 and stored() == []
    # An error of the caller's own: what is buffered is dropped, nothing more is written.
    second = BulkWriter(migrated, max_rows=10, copy=copy)

    def fail() -> None:
        with second:
            second.table(Team, ["name"])
            second.add(Team, ("kept-out",))
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        fail()
    assert second.written(Team) == 0 and not Team.select().where(Team.name == "kept-out").exists()


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_a_constraint_the_database_enforces_comes_back_as_peewee_s_error(migrated: peewee.Database,
                                                                          copy: bool) -> None:
    svc, env = factories.service(), factories.environment()
    first = next(rows(svc, env, 1))

    def load() -> None:
        with migrated.atomic(), BulkWriter(migrated, copy=copy) as writer:
            writer.table(Deployment, FIELDS)
            writer.add(Deployment, first)
            writer.add(Deployment, first)  # the same key twice

    with pytest.raises(peewee.IntegrityError):
        load()
    assert stored() == []
