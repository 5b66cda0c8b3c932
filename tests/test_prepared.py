"""Every prepared read path against the peewee-built one, on both databases: Hypothesis over filters and orders.

``Repository.query()`` builds a listing the peewee way, per call, with the values in it: the reference.
``find``, ``count``, ``exists``, ``page`` and ``cursor_page`` run SQL compiled once per shape and build
rows with compiled loaders. For any filters, order, limit and offset, both must give the same rows --
the same ``__data__``, the same joined rows attached, nothing dirty -- or the same error.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import peewee
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orm_kit.errors import IntegrityViolationError, InvalidQueryError
from orm_kit.models import Deployment, Service, Team
from orm_kit.query.filters import escape_like, like
from orm_kit.repositories import DeploymentRepository, ReleaseRepository, TeamRepository

import factories
import platform_data
from platform_data import Platform, at

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def data(migrated: peewee.Database) -> Platform:
    built = platform_data.build()
    # Ties in the listing order: the primary-key tie-break has something to break.
    checkout, staging = built.services["checkout"], built.envs["staging"]
    for n in range(4):
        factories.deployment(checkout, staging, status=("success", "failed")[n % 2], created_at=at(7, 9),
                             triggered_by=None if n % 2 else f"bot_{n}%")
    return built


def snapshot(row: peewee.Model) -> tuple[Any, ...]:
    """What a row is: its values, its joined rows (recursively), and that nothing is dirty."""
    related = {name: (snapshot(value) if isinstance(value, peewee.Model) else value)
               for name, value in sorted(row.__rel__.items())}
    return (type(row).__name__, dict(row.__data__), related, set(row._dirty), getattr(row, "_persisted", None))


def outcome(run: Any) -> Any:
    """What a call returned (as snapshots) or the error it raised."""
    try:
        result = run()
    except InvalidQueryError as error:
        return ("error", str(error))
    if isinstance(result, list | tuple):
        return [snapshot(r) if isinstance(r, peewee.Model) else r for r in result]
    return result


TEXT = st.sampled_from(["success", "failed", "canceled", "running", "s", "SUC", "bot_0%", "bot_", "%", "_", "", "ü"])
TIMES = st.sampled_from([at(1, 9), at(3, 12), at(5, 12), at(7, 9), at(20, 10, month=10), at(30, 0)])


def values_for(field: str, registry: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    if field in ("status", "triggered_by"):
        return TEXT
    if field in ("created_at", "started_at", "finished_at"):
        return TIMES
    if field in ("duration_seconds", "lock_version"):
        return st.integers(min_value=-5, max_value=2000)
    return st.sampled_from(registry[field] + ["not a key"])


OPS = ["", "__eq", "__ne", "__lt", "__lte", "__gt", "__gte", "__in", "__not_in", "__isnull", "__contains",
       "__startswith"]
FIELDS = ["status", "triggered_by", "created_at", "finished_at", "duration_seconds", "lock_version", "service",
          "environment", "release", "id"]


@st.composite
def filters(draw: st.DrawFn, registry: dict[str, list[Any]]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        field = draw(st.sampled_from(FIELDS))
        op = draw(st.sampled_from(OPS))
        values = values_for(field, registry)
        if op in ("__in", "__not_in"):
            value: Any = draw(st.lists(values, max_size=9))
        elif op == "__isnull":
            value = draw(st.booleans())
        else:
            value = draw(st.one_of(values, st.none())) if op in ("", "__eq", "__ne") else draw(values)
        chosen[field + op] = value
    return chosen


ORDERS = st.lists(st.sampled_from(["created_at", "-created_at", "status", "-status", "triggered_by",
                                   "-duration_seconds", "id", "-id", "environment", "-lock_version"]),
                  max_size=3, unique=True)


def registry_of(data: Platform) -> dict[str, list[Any]]:
    return {"service": [s.id for s in data.services.values()] + [uuid.uuid4()],
            "environment": [e.id for e in data.envs.values()] + [999],
            "release": [r.id for r in data.releases.values()],
            "id": [d.id for d in data.deployments.values()] + [uuid.uuid4()]}


@pytest.fixture
def deployments(migrated: peewee.Database, data: Platform) -> tuple[DeploymentRepository, dict[str, list[Any]]]:
    return DeploymentRepository(migrated), registry_of(data)


@SETTINGS
@given(st.data())
def test_find_count_and_exists_equal_the_peewee_built_query(
        deployments: tuple[DeploymentRepository, dict[str, list[Any]]], data: st.DataObject) -> None:
    repo, registry = deployments
    chosen = data.draw(filters(registry))
    order = data.draw(ORDERS)
    limit = data.draw(st.one_of(st.none(), st.integers(min_value=1, max_value=6)))
    offset = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=5)))
    cached = outcome(lambda: repo.find(order_by=order, limit=limit, offset=offset, **chosen))
    reference = outcome(lambda: list(repo.query(order_by=order, limit=limit, offset=offset, **chosen)
                                     .execute(repo.db)))
    assert cached == reference
    event("refused" if isinstance(cached, tuple) else f"{min(len(cached), 3)}+ rows" if cached else "no rows")
    everything = outcome(lambda: list(repo.query(**chosen).execute(repo.db)))
    counted = outcome(lambda: repo.count(**chosen))
    found = outcome(lambda: repo.exists(**chosen))
    if isinstance(everything, tuple):  # the filters are refused: every path says so, in the same words
        assert counted == found == everything
    else:
        assert (counted, found) == (len(everything), bool(everything))


@SETTINGS
@given(st.data())
def test_pages_equal_peewee_paginate(deployments: tuple[DeploymentRepository, dict[str, list[Any]]],
                                     data: st.DataObject) -> None:
    repo, registry = deployments
    chosen = data.draw(filters(registry))
    order = data.draw(ORDERS)
    number = data.draw(st.integers(min_value=1, max_value=5))
    size = data.draw(st.integers(min_value=1, max_value=6))

    def cached() -> Any:
        page = repo.page(number, size=size, order_by=order, **chosen)
        return page.total, [snapshot(r) for r in page.items]

    def reference() -> Any:
        page = repo.paginate(repo.query(order_by=order, **chosen), number, size)
        return page.total, [snapshot(r) for r in page.items]

    assert outcome(cached) == outcome(reference)


@SETTINGS
@given(st.data())
def test_cursor_pages_equal_the_peewee_built_keyset(deployments: tuple[DeploymentRepository, dict[str, list[Any]]],
                                                    data: st.DataObject) -> None:
    repo, registry = deployments
    chosen = data.draw(filters(registry))
    order = data.draw(ORDERS)
    size = data.draw(st.integers(min_value=1, max_value=4))

    def walk(step: Any) -> Any:
        pages, after = [], None
        for _ in range(12):
            page = step(after)
            pages.append(([snapshot(r) for r in page.items], page.next_cursor))
            after = page.next_cursor
            if after is None:
                break
        return pages

    cached = outcome(lambda: walk(lambda after: repo.cursor_page(size=size, order_by=order, after=after, **chosen)))
    reference = outcome(lambda: walk(lambda after: repo.keyset(repo.query(**chosen), repo._sort_keys(order),
                                                               after, size)))
    assert cached == reference


def _rolled_back(db: peewee.Database, write: Any) -> Any:
    """What ``write()`` returned or raised, and the deployments' rows after it, all then rolled back."""
    with db.atomic() as txn:
        try:
            try:
                result: Any = write()
            except (InvalidQueryError, IntegrityViolationError) as error:
                return ("error", type(error).__name__)
            rows = sorted((str(d.id), d.triggered_by)
                          for d in Deployment.select(Deployment.id, Deployment.triggered_by))
            return result, rows
        finally:
            txn.rollback()


@SETTINGS
@given(st.data())
def test_update_where_and_delete_where_equal_the_peewee_built_statements(
        deployments: tuple[DeploymentRepository, dict[str, list[Any]]], data: st.DataObject) -> None:
    repo, registry = deployments
    chosen = data.draw(filters(registry).filter(bool))  # at least one filter: both refuse none
    who = data.draw(st.sampled_from(["ci", "a%b", None]))

    def reference_where() -> Any:
        return repo.query(**chosen)._where

    def update_reference() -> int:
        return int(Deployment.update(triggered_by=who, lock_version=Deployment.lock_version + 1)
                   .where(reference_where()).execute())

    def delete_reference() -> int:
        return int(Deployment.delete().where(reference_where()).execute())

    updated = _rolled_back(repo.db, lambda: repo.update_where({"triggered_by": who}, **chosen))
    assert updated == _rolled_back(repo.db, update_reference)
    deleted = _rolled_back(repo.db, lambda: repo.delete_where(**chosen))
    assert deleted == _rolled_back(repo.db, delete_reference)
    event("refused" if updated[0] == "error" else f"{min(updated[0], 3)}+ rows" if updated[0] else "no rows")


@SETTINGS
@given(names=st.lists(st.sampled_from(["alpha", "beta", "gamma", "nope", "Alpha", "a%", "b_"]), max_size=20),
       order=st.lists(st.sampled_from(["name", "-name", "display_name", "-created_at", "parent"]), max_size=2,
                      unique=True),
       contains=st.one_of(st.none(), st.sampled_from(["a", "A", "%", "_", "ph", "", "100%"])))
def test_a_model_without_joins_too(migrated: peewee.Database, names: list[str], order: list[str],
                                   contains: str | None) -> None:
    teams = TeamRepository(migrated)
    if not teams.exists():
        for name, display in [("alpha", "Alpha 100%"), ("beta", "Beta_team"), ("gamma", None)]:
            factories.team(name=name, display_name=display)
    chosen: dict[str, Any] = {"name__in": names}
    if contains is not None:
        chosen["display_name__contains"] = contains
    assert outcome(lambda: teams.find(order_by=order, **chosen)) == outcome(
        lambda: list(teams.query(order_by=order, **chosen).execute(migrated)))
    text = contains or ""
    pattern = "%" + escape_like(text) + "%"
    reference = (teams.select().where(like(Team.name, pattern, migrated) | like(Team.display_name, pattern, migrated))
                 .order_by(*teams._ordering(())).limit(50))
    assert outcome(lambda: teams.search(text)) == outcome(lambda: list(reference.execute(migrated)))


def test_an_in_list_on_sqlite_is_one_statement_per_power_of_two(migrated: peewee.Database, data: Platform,
                                                                  backend: str) -> None:
    repo = DeploymentRepository(migrated)
    repo._shapes.statements.clear()  # shared by every DeploymentRepository on this kind of database
    statuses = ["success", "failed", "canceled", "running", "skipped"]
    for count in range(1, 6):
        found = repo.find(status__in=statuses[:count])
        assert [snapshot(d) for d in found] == [snapshot(d) for d in repo.query(status__in=statuses[:count])
                                                .execute(migrated)]
    shapes = {key for key in repo._shapes.statements._items if key[0] == "find"}
    # 1, 2, 3-4, 5 values: four statements on SQLite; on PostgreSQL the list is one array parameter.
    assert len(shapes) == (1 if backend == "postgres" else 4)


def test_the_tie_break_is_only_added_where_the_order_is_not_total(migrated: peewee.Database) -> None:
    teams = TeamRepository(migrated)
    deployments = DeploymentRepository(migrated)
    releases = ReleaseRepository(migrated)
    assert teams._order(["name"]).spec == ("name",)  # unique and not null: already total
    assert teams._order(["display_name"]).spec == ("display_name", "id")
    assert deployments._order(["-created_at"]).spec == ("-created_at", "id")
    assert deployments._order(["-created_at", "-id"]).spec == ("-created_at", "-id")
    assert deployments._order(["-created_at"], keyset=True).spec == ("-created_at", "-id")
    # A unique field that can be null is no tie-break: many rows may hold NULL.
    assert deployments._order(["rollback_of"]).spec == ("rollback_of", "id")
    # Release is unique on (service, version), both not null: ordering by both is total.
    assert releases._order(["service", "-version"]).spec == ("service", "-version")
    assert releases._order(["version"]).spec == ("version", "id")


def test_statements_are_bounded_per_repository(migrated: peewee.Database, data: Platform) -> None:
    repo = DeploymentRepository(migrated)
    cache = repo._shapes.statements
    size, cache.size = cache.size, 8
    try:
        for n in range(20):
            repo.find(limit=n + 1, **{f"created_at__{'lt' if n % 2 else 'gte'}": at(1 + n % 9, 0)})
            repo.find(order_by=["-created_at", "status"][: n % 3])
        assert len(cache) <= 8
        assert [d.id for d in repo.find(status="failed")] == [d.id for d in repo.query(status="failed")
                                                              .execute(migrated)]
    finally:
        cache.size = size


def test_prepared_statements_are_shared_between_threads(migrated: peewee.Database, data: Platform) -> None:
    import threading

    repo = DeploymentRepository(migrated)
    expected = [d.id for d in repo.find(status="success", order_by=["-created_at"])]
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert [d.id for d in repo.find(status="success", order_by=["-created_at"])] == expected
                assert repo.count(status__in=["success", "failed"]) > 0
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            migrated.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_rows_carry_their_joins_as_peewee_builds_them(migrated: peewee.Database, data: Platform) -> None:
    repo = DeploymentRepository(migrated)
    d11 = data.deployments["d11"]  # no release: the outer join found nothing
    (found,) = repo.find(id=d11.id)
    (reference,) = repo.query(id=d11.id).execute(migrated)
    assert snapshot(found) == snapshot(reference)
    assert found.release is None and "release" in found.__rel__
    assert found.service.name == "search-api" and found.environment.slug == "prod-eu"
    assert not found.is_dirty() and found._persisted


def test_children_of_a_row_in_two_queries(migrated: peewee.Database, data: Platform) -> None:
    from playhouse.test_utils import count_queries

    from orm_kit.repositories import ServiceRepository

    services = ServiceRepository(migrated)
    checkout = data.services["checkout"]
    with count_queries() as counter:
        family = services.get_with_children(checkout.id, Deployment, order_by=["-created_at"],
                                            related=["environment", "release", "rollback_of"])
        shown = [(d.service.name, d.environment.slug, d.release.version if d.release else None,
                  d.rollback_of.id if d.rollback_of else None) for d in family.children]
    assert counter.count == 2
    reference = list(Deployment.select().where(Deployment.service == checkout.id)
                     .order_by(Deployment.created_at.desc(), Deployment.id))
    assert [d.id for d in family.children] == [d.id for d in reference]
    assert [d.__data__ for d in family.children] == [d.__data__ for d in reference]
    assert shown[0][:3] == ("checkout", "staging", None)
    assert ("checkout", "prod-eu", "1.0.0", data.deployments["d4"].id) in shown  # d5 rolled back d4
    assert all(d.service is family.parent and not d.is_dirty() for d in family.children)
    with pytest.raises(InvalidQueryError, match=r"Deployment\.environment is not a foreign key to Service"):
        services.get_with_children(checkout.id, Deployment, via="environment")
    with pytest.raises(InvalidQueryError, match="cannot load 'status'"):
        services.get_with_children(checkout.id, Deployment, related=["status"])
    with pytest.raises(InvalidQueryError, match="cannot be sorted by 'nope'"):
        services.get_with_children(checkout.id, Deployment, order_by=["nope"])
    assert services.get_with_children(data.services["web"].id, Deployment).children == ()


def test_a_service_given_as_a_row_is_not_read_again(migrated: peewee.Database, data: Platform) -> None:
    from playhouse.test_utils import count_queries

    from orm_kit.repositories import ServiceRepository

    services = ServiceRepository(migrated)
    checkout = services.find_by_name("checkout")
    assert checkout is not None
    with count_queries() as counter:
        detail = services.find_with_deployments(checkout)
    assert counter.count == 1 and detail.service is checkout and len(detail.deployments) == 12


def test_filters_on_the_same_values_in_another_order_give_the_same_rows(migrated: peewee.Database,
                                                                        data: Platform) -> None:
    repo = DeploymentRepository(migrated)
    one = repo.find(status="success", environment=data.envs["prod-eu"].id)
    other = repo.find(environment=data.envs["prod-eu"].id, status="success")
    assert [snapshot(d) for d in one] == [snapshot(d) for d in other] and one


def test_a_service_key_given_as_text_is_found(migrated: peewee.Database, data: Platform) -> None:
    repo = DeploymentRepository(migrated)
    checkout = data.services["checkout"].id
    assert [d.id for d in repo.find(service=str(checkout))] == [d.id for d in repo.find(service=checkout)]
    assert [d.id for d in repo.find(service__in=[str(checkout), checkout.hex])] == [
        d.id for d in repo.find(service=checkout)]
    assert repo.find(created_at__gte=datetime.datetime(2026, 11, 5, 12)) == repo.find(
        created_at__gte=datetime.datetime(2026, 11, 5, 12, tzinfo=datetime.UTC))
    assert Service  # the models stay bound for the other tests


def test_a_large_dependency_graph_reads_its_services_by_walking_again(migrated: peewee.Database, data: Platform,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from orm_kit.repositories import ServiceRepository
    from orm_kit.repositories import service as service_module

    services = ServiceRepository(migrated)
    gateway = data.services["gateway"]
    listed = services.dependency_graph(gateway.id, depth=3)
    monkeypatch.setattr(service_module, "_LISTED_NODES", 1)  # every graph is "large" now
    walked = services.dependency_graph(gateway.id, depth=3)
    assert walked == listed and len(listed.dependencies) == 6

    def names(graph: Any) -> list[tuple[str, str, int]]:
        return [(e.service.name, e.depends_on.name, e.depth) for e in graph.dependencies + graph.dependents]

    assert names(walked) == names(listed)


def test_a_page_total_is_counted_without_the_joins_that_cannot_change_it(migrated: peewee.Database,
                                                                          data: Platform) -> None:
    from playhouse.test_utils import count_queries

    repo = DeploymentRepository(migrated)
    checkout = data.services["checkout"].id
    with count_queries() as counter:
        page = repo.page(1, size=2, service=checkout)
    sql = counter.get_queries()[-1].msg[0]
    assert "COUNT" in sql and "INNER JOIN" in sql  # the inner joins stay: they could drop rows
    assert "LEFT OUTER JOIN" not in sql  # deployment -> release: one row at most, the count cannot change
    assert page.total == repo.query(service=checkout).count() == 12



class _ProductionDeployments(DeploymentRepository):
    """A repository whose select() has a condition of its own (a constant, compiled into every statement)."""

    def select(self) -> peewee.ModelSelect[Deployment]:
        from orm_kit.models import Environment

        return super().select().where(Environment.tier == "production")


def test_a_select_with_conditions_of_its_own(migrated: peewee.Database, data: Platform) -> None:
    repo = _ProductionDeployments(migrated)
    checkout = data.services["checkout"].id
    found = repo.find(service=checkout, order_by=["-created_at"])
    assert [snapshot(d) for d in found] == [snapshot(d) for d in repo.query(service=checkout, order_by=["-created_at"])
                                            .execute(migrated)]
    assert {d.environment.tier for d in found} == {"production"} and len(found) == 5  # d2, d4, d5, d7, d10
    page = repo.page(1, size=2, service=checkout)
    assert page.total == 5  # the count keeps select()'s condition (and so the join it needs)


def test_a_long_in_list_is_never_padded_past_the_parameter_limit(migrated: peewee.Database, data: Platform,
                                                                 backend: str) -> None:
    import sqlite3

    if backend == "sqlite":
        migrated.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 1600)
    repo = DeploymentRepository(migrated)
    keys = [uuid.UUID(int=n) for n in range(1, 1500)] + [data.deployments["d1"].id]  # 1,500: 2,048 if padded
    assert [d.id for d in repo.find(id__in=keys)] == [data.deployments["d1"].id]
    assert [d.id for d in repo.find(id__in=keys[-600:])] == [data.deployments["d1"].id]  # 1,024 placeholders
