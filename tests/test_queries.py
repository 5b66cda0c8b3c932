"""orm_kit.testing.queries: the query log, the query budget and the N+1 detector, on real databases."""

from __future__ import annotations

import peewee
import pytest

from orm_kit.errors import ConfigurationError, QueryBudgetError
from orm_kit.models import Environment, Service, Team
from orm_kit.repositories import ServiceRepository
from orm_kit.testing import max_queries, no_n_plus_one, record_queries
from orm_kit.testing.queries import QueryLog, Statement, shape
from orm_kit.transactions import transaction

import factories


def test_the_log_has_each_statement_with_its_duration_and_line(orm_kit_db: peewee.Database) -> None:
    team = factories.team(name="payments")
    with record_queries(orm_kit_db) as log:
        Team.get_by_id(team.id)
        with transaction(orm_kit_db):  # a savepoint in the test's transaction: logged, not a query
            Team.select().count()
    assert [s.is_control for s in log.statements] == [False, True, False, True]
    assert log.count == 2 and len(log.selects) == 2
    first = log.queries[0]
    assert first.sql.startswith("SELECT") and first.params[0] == team.id
    assert first.duration is not None and 0 <= first.duration < 5
    assert first.location is not None and first.location.startswith("tests/test_queries.py:")
    assert "in test_the_log_has_each_statement_with_its_duration_and_line" in first.location


def test_without_a_database_every_database_counts(orm_kit_db: peewee.Database, tmp_path) -> None:
    other = peewee.SqliteDatabase(str(tmp_path / "other.db"))
    try:
        with record_queries() as log:
            Team.select().count()
            other.execute_sql("SELECT 1")
        assert [s.sql for s in log.queries][-1] == "SELECT 1" and log.count == 2
        assert log.queries[0].duration is None  # through peewee's logger: no timings
    finally:
        other.close()


def test_a_budget_passes_within_and_fails_past_its_limit_listing_the_queries(orm_kit_db: peewee.Database) -> None:
    svc = factories.service(name="checkout-api")
    services = ServiceRepository(orm_kit_db)
    with max_queries(2, orm_kit_db) as log:
        services.find_with_deployments(svc.id)
    assert log.count == 2
    with pytest.raises(QueryBudgetError) as caught, max_queries(1, orm_kit_db):
        services.find_with_deployments(svc.id)
    message = str(caught.value)
    assert message.startswith("2 queries ran where the budget is 1:\n  1. SELECT")
    assert "\n  2. SELECT" in message and 'FROM "deployment"' in message
    assert "[tests/test_queries.py:" in message
    assert isinstance(caught.value, AssertionError)  # pytest reports it as a failed check


@pytest.mark.parametrize("limit", [-1, 1.5, True, "2"])
def test_a_budget_must_be_a_count(limit: object) -> None:
    with pytest.raises(ConfigurationError, match="expected a whole number"), max_queries(limit):  # type: ignore[arg-type]
        pass  # pragma: no cover


def test_an_n_plus_one_fails_and_shows_where(orm_kit_db: peewee.Database) -> None:
    owner = factories.team(name="owners")
    for n in range(3):
        factories.service(name=f"svc-{n}", owner=owner)
    services = list(Service.select())
    with pytest.raises(QueryBudgetError, match=r"N\+1 queries: one SELECT ran 3 times") as caught, \
            no_n_plus_one(orm_kit_db):
        [s.owner.name for s in services]  # a lazy foreign key: one query per row
    assert 'FROM "team"' in str(caught.value) and "test_queries.py" in str(caught.value)
    with no_n_plus_one(orm_kit_db):  # the same rows joined: one query
        assert {s.owner.name for s in Service.select(Service, Team).join(Team)} == {"owners"}
    with no_n_plus_one(orm_kit_db, threshold=4):  # three rows stay under a threshold of four
        for s in services:
            s.owner.name  # noqa: B018


def test_repeated_writes_are_not_an_n_plus_one(orm_kit_db: peewee.Database) -> None:
    with no_n_plus_one(orm_kit_db) as log:
        for n in range(5):
            Environment.create(name=f"Env {n}", slug=f"env-{n}", tier="testing")
    assert log.count == 5 and not log.selects


def test_shapes_fold_lists_of_parameters() -> None:
    assert shape('SELECT * FROM "t" WHERE ("id" IN (?, ?, ?))') == shape('SELECT * FROM "t" WHERE ("id" IN (?))')
    assert shape("INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s)") == "INSERT INTO t (a, b) VALUES (...)"
    assert shape("SELECT  a\n FROM t") == "SELECT a FROM t"
    log = QueryLog([Statement("SELECT a FROM t WHERE id = ?", (n,)) for n in (1, 2, 2)])
    (repeat,) = log.repeats(3)
    assert (len(repeat.statements), repeat.parameter_sets) == (3, 2)


def test_an_uninitialised_proxy_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="not initialised"), record_queries(peewee.DatabaseProxy()):
        pass  # pragma: no cover


def test_a_proxy_records_its_database(orm_kit_db: peewee.Database) -> None:
    proxy = peewee.DatabaseProxy()
    proxy.initialize(orm_kit_db)
    with record_queries(proxy) as log:
        Team.select().count()
    assert log.count == 1
