"""The platform's repositories on a hand-built history (tests/platform_data.py), answers worked out by hand.

These run on the pytest plugin's ``orm_kit_db`` (the session's migrated database, each test rolled back) and
count queries with its ``record_queries`` / ``no_n_plus_one`` fixtures, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
import uuid

import peewee
import pytest

from orm_kit.errors import InvalidQueryError, NotFoundError, QueryBudgetError
from orm_kit.models import Deployment, Environment, Release, Service, ServiceDependency, Team
from orm_kit.repositories import (
    DeploymentRepository,
    EnvironmentRepository,
    ReleaseRepository,
    ServiceRepository,
    TeamRepository,
)
from orm_kit.testing import record_queries

import platform_data
from platform_data import SHA_A, SHA_B, SHA_C, Platform, at


@pytest.fixture
def data(orm_kit_db: peewee.Database) -> Platform:
    return platform_data.build()


def names(deployments: object, data: Platform) -> list[str]:
    by_id = {d.id: key for key, d in data.deployments.items()}
    return [by_id[d.id] for d in deployments]  # type: ignore[attr-defined]


def test_find_by_name(orm_kit_db: peewee.Database, data: Platform) -> None:
    services = ServiceRepository(orm_kit_db)
    found = services.find_by_name("checkout")
    assert found is not None and found.id == data.services["checkout"].id
    assert found.owner_id == data.teams["payments"].id
    assert services.find_by_name("nope") is None
    assert services.find_by_name("checkout' OR '1'='1") is None
    assert TeamRepository(orm_kit_db).find_by_name("payments").id == data.teams["payments"].id  # type: ignore[union-attr]
    assert EnvironmentRepository(orm_kit_db).find_by_slug("prod-us").name == "Production US"  # type: ignore[union-attr]
    release = ReleaseRepository(orm_kit_db).find_by_version(data.services["checkout"], "1.1.0")
    assert release is not None and release.commit_sha == SHA_B


def test_find_with_deployments(orm_kit_db: peewee.Database, data: Platform, record_queries, no_n_plus_one) -> None:
    services = ServiceRepository(orm_kit_db)
    with record_queries() as log, no_n_plus_one():
        detail = services.find_with_deployments(data.services["checkout"].id)
        shown = [(d.environment.slug, d.release.version if d.release_id else None, d.service.name)
                 for d in detail.deployments]
    assert log.count == 2
    assert detail.service.name == "checkout"
    assert names(detail.deployments, data) == ["d10", "d6", "d7", "d5", "d4", "d3", "d2", "d1"]
    assert shown[0] == ("prod-eu", "1.2.0", "checkout")
    assert services.find_with_deployments(data.services["web"]).deployments == ()
    with pytest.raises(NotFoundError, match="Service"):
        services.find_with_deployments(uuid.uuid4())


def test_deployed_where(orm_kit_db: peewee.Database, data: Platform, max_queries) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    with max_queries(1):
        found = deployments.deployed_where()
        rows = [(d.service.name, d.environment.slug, d.release.version if d.release_id else None) for d in found]
    assert names(found, data) == ["d5", "d7", "d3", "d8", "d11"]
    assert rows == [("checkout", "prod-eu", "1.0.0"), ("checkout", "prod-us", "1.1.0"),
                    ("checkout", "staging", "1.1.0"), ("ledger", "prod-eu", "2.0.0"), ("search-api", "prod-eu", None)]
    assert names(deployments.deployed_where(environment=data.envs["prod-eu"]), data) == ["d5", "d8", "d11"]
    assert names(deployments.deployed_where(service=data.services["ledger"]), data) == ["d8"]


def test_history_by_page(orm_kit_db: peewee.Database, data: Platform) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    checkout = data.services["checkout"]
    pages = [deployments.history(service=checkout, page=n, size=3) for n in (1, 2, 3)]
    assert [names(p.items, data) for p in pages] == [["d10", "d6", "d7"], ["d5", "d4", "d3"], ["d2", "d1"]]
    assert (pages[0].total, pages[0].pages, pages[0].has_next, pages[2].has_next) == (8, 3, True, False)
    prod_ok = deployments.history(environment=data.envs["prod-eu"], status="success")
    assert names(prod_ok.items, data) == ["d5", "d4", "d8", "d2", "d11"]
    window = deployments.history(service=checkout, since=at(3, 0), until=at(5, 0))
    assert names(window.items, data) == ["d7", "d5", "d4", "d3"]
    failed_or_canceled = deployments.history(status=["failed", "canceled"])
    assert names(failed_or_canceled.items, data) == ["d10", "d6"]
    assert deployments.history(service=checkout, page=4, size=3).items == ()


def test_history_loads_related_rows_in_the_same_query(orm_kit_db: peewee.Database, data: Platform,
                                                      record_queries, max_queries) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    with record_queries() as log:
        page = deployments.history(service=data.services["checkout"], size=20)
        shown = [(d.service.name, d.environment.slug, d.release.version if d.release_id else None)
                 for d in page.items]
    assert log.count == 1  # the rows: a page that is not full needs no count; the relations cost nothing
    assert shown[:2] == [("checkout", "prod-eu", "1.2.0"), ("checkout", "staging", "1.2.0")]  # d10, d6
    with record_queries() as log:
        full = deployments.history(service=data.services["checkout"], size=4)
    assert (log.count, full.total, len(full.items)) == (2, 8, 4)  # a full page: the rows, then the count
    with max_queries(1):
        after = deployments.history_after(service=data.services["checkout"], size=20)
        assert {d.environment.slug for d in after.items} == {"prod-eu", "prod-us", "staging"}


def test_history_by_cursor(orm_kit_db: peewee.Database, data: Platform) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    seen: list[str] = []
    after = None
    while True:
        page = deployments.history_after(service=data.services["checkout"], size=3, after=after)
        seen += names(page.items, data)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == ["d10", "d6", "d7", "d5", "d4", "d3", "d2", "d1"]
    # A row inserted after the first page was read does not shift the next page (keyset, not offset).
    first = deployments.history_after(size=2)
    assert names(first.items, data) == ["d10", "d9"]
    Deployment.create(service=data.services["web"], environment=data.envs["staging"], status="success",
                      created_at=at(30, 0))
    second = deployments.history_after(size=2, after=first.next_cursor)
    assert names(second.items, data) == ["d6", "d7"]


def test_history_rejects_bad_input(orm_kit_db: peewee.Database, data: Platform) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    with pytest.raises(InvalidQueryError, match="'done' is not one of"):
        deployments.history(status="done")
    with pytest.raises(InvalidQueryError, match="not one this listing issued"):
        deployments.history_after(after="eyJvIjpbXX0")
    with pytest.raises(InvalidQueryError, match="page size"):
        deployments.history(size=100_000)
    with pytest.raises(InvalidQueryError, match="date and time"):
        deployments.history(since="yesterday")  # type: ignore[arg-type]


def test_environments_reached(orm_kit_db: peewee.Database, data: Platform) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    assert [e.slug for e in deployments.environments_reached(SHA_B)] == ["prod-eu", "prod-us", "staging"]
    assert [e.slug for e in deployments.environments_reached(SHA_A.upper())] == ["prod-eu", "staging"]
    assert deployments.environments_reached(SHA_C) == []  # failed and canceled only
    with pytest.raises(InvalidQueryError, match="40 hex digits"):
        deployments.environments_reached("abc' OR 1=1 --")


def test_previous_successful(orm_kit_db: peewee.Database, data: Platform) -> None:
    deployments = DeploymentRepository(orm_kit_db)
    d = data.deployments
    expected = {"d10": "d5", "d5": "d4", "d4": "d2", "d2": None, "d6": "d3", "d9": None, "d7": None}
    for key, target in expected.items():
        found = deployments.previous_successful(d[key])
        assert (names([found], data)[0] if found else None) == target, key
    assert names([deployments.previous_successful(d["d10"].id)], data) == ["d5"]  # type: ignore[list-item]


def test_services_of_a_team_with_subteams(orm_kit_db: peewee.Database, data: Platform) -> None:
    services = ServiceRepository(orm_kit_db)
    t = data.teams
    assert [s.name for s in services.owned_by_team(t["payments"])] == ["checkout", "fraud", "ledger"]
    assert [s.name for s in services.owned_by_team(t["platform"])] == [
        "checkout", "fraud", "gateway", "ledger", "search-api"]
    assert [s.name for s in services.owned_by_team(t["payments"], include_subteams=False)] == ["checkout"]
    assert [s.name for s in services.owned_by_team(t["ops-a"])] == ["pager"]  # parents form a cycle
    assert [s.name for s in TeamRepository(orm_kit_db).subteams(t["platform"])] == [
        "payments", "payments-risk", "search"]
    with pytest.raises(InvalidQueryError, match="team 'draft' is unsaved"):
        services.owned_by_team(Team(name="draft"))


def edges(found: object) -> set[tuple[str, str, int]]:
    return {(e.service.name, e.depends_on.name, e.depth) for e in found}  # type: ignore[attr-defined]


def test_dependency_graph(orm_kit_db: peewee.Database, data: Platform) -> None:
    services = ServiceRepository(orm_kit_db)
    checkout = data.services["checkout"]
    one = services.dependency_graph(checkout, depth=1)
    assert edges(one.dependencies) == {("checkout", "fraud", 1), ("checkout", "ledger", 1)}
    assert edges(one.dependents) == {("gateway", "checkout", 1), ("fraud", "checkout", 1)}
    three = services.dependency_graph(checkout.id, depth=3)
    assert edges(three.dependencies) == {("checkout", "fraud", 1), ("checkout", "ledger", 1),
                                         ("fraud", "checkout", 2), ("ledger", "fraud", 2)}
    assert edges(three.dependents) == {("gateway", "checkout", 1), ("fraud", "checkout", 1), ("web", "gateway", 2),
                                       ("checkout", "fraud", 2), ("ledger", "fraud", 2), ("checkout", "ledger", 3)}
    assert [e.kind for e in three.dependencies if e.depends_on.name == "fraud" and e.service.name == "checkout"] == [
        "data"]
    leaf = services.dependency_graph(data.services["search-api"], depth=5)
    assert edges(leaf.dependencies) == set()
    assert edges(leaf.dependents) == {("gateway", "search-api", 1), ("web", "gateway", 2)}
    with pytest.raises(InvalidQueryError, match="depth"):
        services.dependency_graph(checkout, depth=0)
    lonely = services.dependency_graph(str(data.services["pager"].id))  # by key, no edges: the root is still read
    assert lonely.root.name == "pager" and lonely.dependencies == lonely.dependents == ()
    for missing in (uuid.uuid4(), "not-a-key"):
        with pytest.raises(NotFoundError, match="Service"):
            services.dependency_graph(missing)


def test_dora_metrics(orm_kit_db: peewee.Database, data: Platform) -> None:
    metrics = DeploymentRepository(orm_kit_db).dora_metrics(at(1, 0), at(8, 0))
    assert metrics.deployments == 5  # d2 d4 d5 d7 d8
    assert metrics.deployment_frequency == pytest.approx(5 / 7)
    # lead times 1h15 (d8), 4h20 (d4), 4h30 (d2), 26h30 (d7), 54h10 (d5): the median is 4h30
    assert metrics.lead_time == datetime.timedelta(hours=4, minutes=30)
    assert (metrics.failed_changes, metrics.change_failure_rate) == (1, pytest.approx(0.2))  # d4
    # production incidents opened and resolved: i1 70 min, i2 120 min
    assert (metrics.restored_incidents, metrics.time_to_restore) == (2, datetime.timedelta(minutes=95))
    october = DeploymentRepository(orm_kit_db).dora_metrics(at(1, 0, month=10), at(1, 0))
    assert (october.deployments, october.lead_time, october.change_failure_rate) == (1, None, 0.0)
    empty = DeploymentRepository(orm_kit_db).dora_metrics(at(1, 0, month=1), at(2, 0, month=1))
    assert (empty.deployments, empty.change_failure_rate, empty.time_to_restore) == (0, None, None)
    with pytest.raises(InvalidQueryError, match="must be after start"):
        DeploymentRepository(orm_kit_db).dora_metrics(at(8, 0), at(1, 0))


# --- a fixed number of queries, whatever the size ---------------------------------------------------

def grow(n: int) -> tuple[Service, Environment]:
    """A service with ``n`` deployments (each with a release) and a dependency fan of ``n`` services."""
    owner = Team.create(name=f"grow-{n}")
    root = Service.create(name=f"root-{n}", tier="high", owner=owner)
    env = Environment.create(name=f"Env {n}", slug=f"env-{n}", tier="production")
    release = Release.create(service=root, version="1.0.0", commit_sha="e" * 40, ref="main")
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    insert(Deployment, [
        {"id": uuid.uuid4(), "service": root.id, "environment": env.id, "release": release.id, "status": "success",
         "created_at": base + datetime.timedelta(minutes=i), "finished_at": base + datetime.timedelta(minutes=i)}
        for i in range(n)])
    others = [{"id": uuid.uuid4(), "name": f"dep-{n}-{i}", "tier": "low", "owner": owner.id} for i in range(n)]
    insert(Service, others)
    insert(ServiceDependency, [{"service": root.id, "depends_on": o["id"]} for o in others])
    insert(ServiceDependency, [{"service": o["id"], "depends_on": root.id} for o in others[: n // 2]])
    return root, env


def insert(model: type[peewee.Model], rows: list[dict[str, object]]) -> None:
    # PostgreSQL takes at most 65535 parameters per statement.
    for chunk in peewee.chunked(rows, 1000):
        model.insert_many(chunk).execute()


def queries_for(db: peewee.Database, root: Service, env: Environment) -> dict[str, tuple[int, int]]:
    services, deployments = ServiceRepository(db), DeploymentRepository(db)
    runs = {
        "find_with_deployments": lambda: len(services.find_with_deployments(root.id).deployments),
        "history page": lambda: len(deployments.history(service=root, page=2, size=50).items),
        "history cursor": lambda: len(deployments.history_after(service=root, size=50).items),
        "deployed_where": lambda: len(deployments.deployed_where(environment=env)),
        "dependency_graph": lambda: len(services.dependency_graph(root, depth=3).dependencies),
        "dependency_graph by key": lambda: len(services.dependency_graph(root.id, depth=3).dependencies),
    }
    counts = {}
    for name, run in runs.items():
        with record_queries(db) as log:
            rows = run()
        counts[name] = (log.count, rows)
    return counts


def test_query_counts_do_not_grow_with_rows(orm_kit_db: peewee.Database) -> None:
    small = queries_for(orm_kit_db, *grow(10))
    large = queries_for(orm_kit_db, *grow(10_000))
    assert {k: v[0] for k, v in small.items()} == {k: v[0] for k, v in large.items()} == {
        "find_with_deployments": 2, "history page": 2, "history cursor": 1, "deployed_where": 1,
        "dependency_graph": 3, "dependency_graph by key": 3}
    assert small["find_with_deployments"][1] == 10 and large["find_with_deployments"][1] == 10_000
    assert large["dependency_graph"][1] == 15_000 and large["history page"][1] == 50


def test_reading_a_relation_per_row_is_caught_as_n_plus_one(orm_kit_db: peewee.Database, data: Platform,
                                                            no_n_plus_one) -> None:
    # The same listing read naively: a lazy foreign key per deployment, one query per row (three releases).
    rows = list(Deployment.select().where(Deployment.service == data.services["checkout"]))
    expected = r"one SELECT ran 8 times in this block, with 3 different parameter sets \(a query per row\)"
    with pytest.raises(QueryBudgetError, match=expected) as caught, no_n_plus_one():
        [d.release.version for d in rows if d.release_id]
    assert 'FROM "release"' in str(caught.value) and "test_platform_repositories.py" in str(caught.value)
