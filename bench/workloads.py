"""The workloads: each one done three ways (raw driver, plain peewee, orm-kit), with a check of its answer."""

from __future__ import annotations

import datetime
import random
import sqlite3
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import peewee
from backends import WHO, Backend, Raw, sqlite_pragmas
from plain import (
    PlainDeployment,
    PlainEnvironment,
    PlainIncident,
    PlainRelease,
    PlainService,
    PlainServiceDependency,
    PlainTeam,
)
from plain import bind as bind_plain

from orm_kit import migrate_up
from orm_kit.bulk import BulkWriter, larger_cache, rows_per_chunk, sync_id_sequence
from orm_kit.db import open_database
from orm_kit.fields import utcnow
from orm_kit.models import MODELS, Deployment, Environment, Incident, Release, Service, ServiceDependency, Team
from orm_kit.repositories import DeploymentRepository, ServiceRepository, TeamRepository
from orm_kit.repositories.dora import dora_metrics

try:  # the synthetic generator's home after the package layout settles
    from orm_kit.synthetic import (  # type: ignore[import-not-found, unused-ignore]
        DEPLOYMENT_FIELDS,
        INCIDENT_FIELDS,
        RELEASE_FIELDS,
        generate,
        synthetic_rows,
    )
except ImportError:
    from orm_kit.seed_generator import DEPLOYMENT_FIELDS, INCIDENT_FIELDS, RELEASE_FIELDS, generate, synthetic_rows

UTC = datetime.UTC


@dataclass
class Data:
    team_ids: list[int]
    prod_id: int
    busy_service: uuid.UUID  # the service with the most deployments
    detail_name: str  # a service with exactly 20 deployments
    graph_root: uuid.UUID
    services: list[uuid.UUID]
    envs: list[int]
    releases: dict[uuid.UUID, int]


def build_data(backend: Backend, deployments: int, services: int) -> Data:
    db = backend.orm
    generate(db, deployments=deployments, random_seed=1, services=services, days=90)
    with db.atomic():
        teams = [Team.create(name=f"bench-{n}", email=f"bench{n}@example.com") for n in range(500)]
        owner = teams[0]
        envs = list(Environment.select().where(Environment.slug.startswith("synth-")).order_by(Environment.id))
        detail = Service.create(name="bench-detail", tier="high", owner=owner)
        for n in range(20):
            release = Release.create(service=detail, version=f"1.0.{n}", ref="main", commit_sha=f"{n:040x}")
            start = datetime.datetime(2026, 2, 1, tzinfo=UTC) + datetime.timedelta(hours=n)
            Deployment.create(service=detail, environment=envs[n % 3], release=release if n % 4 else None,
                              status=("success", "failed")[n % 5 == 0], started_at=start,
                              finished_at=start + datetime.timedelta(minutes=n + 1))
        synthetic = [s.id for s in Service.select(Service.id).where(Service.name.startswith("synth-s1-"))
                     .order_by(Service.name)]
        rng = random.Random(5)
        edges = set()
        for service in synthetic:
            for other in rng.sample(synthetic, 3):
                if other != service:
                    edges.add((service, other))
        ServiceDependency.insert_many(
            [{"service": a, "depends_on": b, "kind": ("runtime", "build", "data")[i % 3]}
             for i, (a, b) in enumerate(sorted(edges))]).execute()
    busy = (Deployment.select(Deployment.service, peewee.fn.COUNT(Deployment.id).alias("n"))
            .group_by(Deployment.service).order_by(peewee.SQL("n").desc(), Deployment.service).first())
    releases = {r.service_id: r.id for r in Release.select(Release.service, Release.id)}
    if backend.postgres:
        db.execute_sql("ANALYZE")
    return Data([t.id for t in teams], envs[2].id, busy.service_id, "bench-detail", synthetic[0], synthetic,
                [e.id for e in envs], releases)


# --- workloads -------------------------------------------------------------------------------------

Run = Callable[[int, int], Any]  # (operations, run number) -> what it produced
Check = Callable[[Any, int], Any]  # (what it produced, run number) -> a comparable answer


@dataclass
class Workload:
    name: str
    unit: str  # what one operation is: "op" or "row"
    size: int  # operations per timed run
    goal: dict[str, float]  # backend kind -> the goal for orm-kit / raw (absent: no goal)
    run: dict[str, Run]
    answer: dict[str, Check]
    transaction: bool = False
    before: Callable[[str, int], None] | None = None  # untimed, before each contender's run
    after: Callable[[str, int], None] | None = None  # untimed, after it (once its answer is taken)
    peewee_goal: bool = True  # orm-kit should be at least as fast as plain peewee
    runs: int | None = None  # overrides --runs (one run of the slowest; more of the single statements)
    rounds: int = 1  # a run is split into this many rounds, interleaved, so load changes hit all three alike


def _team_tuple(t: Any) -> tuple[Any, ...]:
    return (t.id, t.name, t.display_name, t.email, t.parent_id, t.created_at)


def _same(check: Check) -> dict[str, Check]:
    return dict.fromkeys(WHO, check)


def repository_workloads(b: Backend, d: Data, scale: float) -> list[Workload]:
    raw = b.raw
    teams = TeamRepository(b.orm)
    services = ServiceRepository(b.orm)
    deployments = DeploymentRepository(b.orm)
    ids = d.team_ids
    kind = "postgres" if b.postgres else "sqlite"
    out: list[Workload] = []

    # get by primary key
    team_sql = raw.q("SELECT id, name, display_name, email, parent_id, created_at FROM team WHERE id = ?")

    def raw_get(n: int, run: int) -> list[Any]:
        execute, time_, out_ = raw.execute, raw.time, []
        for i in range(n):
            r = execute(team_sql, (ids[i % 500],)).fetchone()
            out_.append((r[0], r[1], r[2], r[3], r[4], time_(r[5])))
        return out_

    def by_model(get: Callable[[int], Any]) -> Run:
        return lambda n, run: [get(ids[i % 500]) for i in range(n)]

    def teams_answer(found: Any, run: int) -> Any:
        return [t if isinstance(t, tuple) else _team_tuple(t) for t in found]

    out.append(Workload("get by primary key", "op", int(2000 * scale), {"sqlite": 2, "postgres": 1.3},
                        {"raw": raw_get, "peewee": by_model(PlainTeam.get_by_id), "orm-kit": by_model(teams.get)},
                        _same(teams_answer)))
    out.append(Workload("Model.get_by_id", "op", int(2000 * scale), {},
                        {"raw": raw_get, "peewee": by_model(PlainTeam.get_by_id), "orm-kit": by_model(Team.get_by_id)},
                        _same(teams_answer)))

    # create one validated row
    def created(prefix: str, who: str) -> Check:
        def read(_: Any, run: int) -> Any:
            rows = raw.rows("SELECT name, display_name, email, parent_id FROM team WHERE name LIKE ?",
                            (f"{prefix}{run}-{who}-%",))
            return sorted((r[0].split("-", 2)[2], *r[1:]) for r in rows)
        return read

    insert_team = raw.q("INSERT INTO team (name, display_name, email, parent_id, created_at) VALUES (?, ?, ?, ?, ?)"
                        + (" RETURNING id" if b.postgres else ""))

    def raw_create(prefix: str) -> Run:
        def run_(n: int, run: int) -> Any:
            execute, stamp = raw.execute, raw.p_time
            for i in range(n):
                cursor = execute(insert_team, (f"{prefix}{run}-raw-{i}", None, None, None, stamp(utcnow())))
                cursor.fetchone() if b.postgres else cursor.lastrowid
        return run_

    def orm_create(prefix: str, who: str, make: Callable[..., Any]) -> Run:
        def run_(n: int, run: int) -> Any:
            for i in range(n):
                make(name=f"{prefix}{run}-{who}-{i}")
        return run_

    def plain_create(prefix: str) -> Run:
        def run_(n: int, run: int) -> Any:
            for i in range(n):
                PlainTeam.create(name=f"{prefix}{run}-peewee-{i}", created_at=utcnow())
        return run_

    for title, prefix, make, goal in (("create one validated row", "c", teams.create, {"sqlite": 3, "postgres": 1.3}),
                                      ("Model.create", "m", Team.create, {})):
        out.append(Workload(title, "op", int(2000 * scale), goal,
                            {"raw": raw_create(prefix), "peewee": plain_create(prefix),
                             "orm-kit": orm_create(prefix, "orm", make)},
                            {"raw": created(prefix, "raw"), "peewee": created(prefix, "peewee"),
                             "orm-kit": created(prefix, "orm")}, transaction=True))

    # save one changed row
    def saved(prefix: str) -> Check:
        def read(_: Any, run: int) -> Any:
            rows = raw.rows("SELECT name, display_name FROM team WHERE name LIKE ?", (f"{prefix}-%",))
            return sorted((r[0].split("-", 2)[2], r[1]) for r in rows)
        return read

    def save_rows(prefix: str, count: int) -> dict[str, list[int]]:
        made = {}
        with b.orm.atomic():
            for who in WHO:
                made[who] = [Team.create(name=f"{prefix}-{who.replace('-', '')}-{i}").id for i in range(count)]
        return made

    for title, prefix, goal in (("save one changed row", "s", {"sqlite": 4}), ("Model.save", "ms", {})):
        keys = save_rows(prefix, 200)
        raw_rows = [list(r) for r in raw.rows(
            f"SELECT id, name, display_name, email, parent_id, created_at FROM team WHERE id IN "
            f"({', '.join(str(k) for k in keys['raw'])}) ORDER BY id")]
        plain_objs = list(PlainTeam.select().where(PlainTeam.id.in_(keys["peewee"])).order_by(PlainTeam.id))
        orm_objs = list(Team.select().where(Team.id.in_(keys["orm-kit"])).order_by(Team.id))
        update_team = raw.q("UPDATE team SET name = ?, display_name = ?, email = ?, parent_id = ?, created_at = ? "
                            "WHERE id = ?")

        def raw_save(n: int, run: int, rows: list[list[Any]] = raw_rows, sql: str = update_team) -> Any:
            execute = raw.execute
            for i in range(n):
                row = rows[i % len(rows)]
                row[2] = f"v{run}-{i % len(rows)}"
                execute(sql, (row[1], row[2], row[3], row[4], row[5], row[0]))

        def model_save(objs: list[Any], save: Callable[[Any], Any]) -> Run:
            def run_(n: int, run: int) -> Any:
                for i in range(n):
                    obj = objs[i % len(objs)]
                    obj.display_name = f"v{run}-{i % len(objs)}"
                    save(obj)
            return run_

        orm_save = teams.save if title.startswith("save") else (lambda obj: obj.save())
        out.append(Workload(title, "op", int(2000 * scale), goal,
                            {"raw": raw_save, "peewee": model_save(plain_objs, lambda obj: obj.save()),
                             "orm-kit": model_save(orm_objs, orm_save)},
                            {"raw": saved(f"{prefix}-raw"), "peewee": saved(f"{prefix}-peewee"),
                             "orm-kit": saved(f"{prefix}-ormkit")}, transaction=True))

    # a service by name + its 20 deployments
    d_cols = ("id", "service_id", "environment_id", "release_id", "rollback_of_id", "status", "triggered_by",
              "lock_version", "created_at", "started_at", "finished_at", "duration_seconds")
    s_cols = ("id", "name", "description", "lifecycle", "tier", "repository_url", "owner_id", "lock_version",
              "created_at", "updated_at")
    e_cols = ("id", "name", "slug", "tier", "state", "external_url", "region")
    r_cols = ("id", "service_id", "version", "commit_sha", "ref", "committed_at", "created_at")

    def select_list(alias: str, columns: tuple[str, ...]) -> str:
        return ", ".join(f"{alias}.{c}" for c in columns)

    def deployment_row(r: Any, base: int = 0) -> tuple[Any, ...]:
        u, t = raw.uuid, raw.time
        return (u(r[base]), u(r[base + 1]), r[base + 2], r[base + 3], u(r[base + 4]), r[base + 5], r[base + 6],
                r[base + 7], t(r[base + 8]), t(r[base + 9]), t(r[base + 10]), r[base + 11])

    def service_row(r: Any, base: int = 0) -> tuple[Any, ...]:
        u, t = raw.uuid, raw.time
        return (u(r[base]), *r[base + 1:base + 7], r[base + 7], t(r[base + 8]), t(r[base + 9]))

    def env_row(r: Any, base: int) -> tuple[Any, ...]:
        return tuple(r[base:base + 7])

    def release_row(r: Any, base: int) -> tuple[Any, ...] | None:
        if r[base] is None:
            return None
        return (r[base], raw.uuid(r[base + 1]), r[base + 2], r[base + 3], r[base + 4], raw.time(r[base + 5]),
                raw.time(r[base + 6]))

    service_by_name = raw.q(f"SELECT {select_list('s', s_cols)} FROM service s WHERE s.name = ?")
    detail_sql = raw.q(
        f"SELECT {select_list('d', d_cols)}, {select_list('e', e_cols)}, {select_list('r', r_cols)} "
        "FROM deployment d JOIN environment e ON e.id = d.environment_id LEFT JOIN release r ON r.id = d.release_id "
        "WHERE d.service_id = ? ORDER BY d.created_at DESC, d.id DESC")

    def raw_detail(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            service = service_row(raw.execute(service_by_name, (d.detail_name,)).fetchone())
            rows = raw.execute(detail_sql, (raw.p_uuid(service[0]),)).fetchall()
            found = (service, [(deployment_row(r), env_row(r, 12), release_row(r, 19)) for r in rows])
        return found

    def raw_detail_answer(found: Any, run: int) -> Any:
        service, rows = found
        return (service[0], service[1], [(dep[0], dep[5], dep[8], env[2], rel[2] if rel else None, dep[11])
                                          for dep, env, rel in rows])

    def peewee_detail(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            service = PlainService.get(PlainService.name == d.detail_name)
            rows = list(PlainDeployment.select(PlainDeployment, PlainEnvironment, PlainRelease)
                        .join_from(PlainDeployment, PlainEnvironment)
                        .join_from(PlainDeployment, PlainRelease, peewee.JOIN.LEFT_OUTER)
                        .where(PlainDeployment.service == service.id)
                        .order_by(PlainDeployment.created_at.desc(), PlainDeployment.id.desc()))
            found = (service, rows)
        return found

    def orm_detail(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            service = services.find_by_name(d.detail_name)
            found = services.find_with_deployments(service)  # type: ignore[arg-type]
        return found

    def model_detail_answer(found: Any, run: int) -> Any:
        service, rows = (found.service, found.deployments) if hasattr(found, "service") else found
        return (service.id, service.name, [(x.id, x.status, x.created_at, x.environment.slug,
                                            x.release.version if x.release_id else None, x.duration_seconds)
                                           for x in rows])

    out.append(Workload("a service by name + its 20 deployments", "op", int(300 * scale),
                        {"sqlite": 3, "postgres": 1.5},
                        {"raw": raw_detail, "peewee": peewee_detail, "orm-kit": orm_detail},
                        {"raw": raw_detail_answer, "peewee": model_detail_answer, "orm-kit": model_detail_answer}))

    # a filtered, ordered page of 20
    page_sql = raw.q(
        f"SELECT {select_list('d', d_cols)}, {select_list('s', s_cols)}, {select_list('e', e_cols)}, "
        f"{select_list('r', r_cols)} FROM deployment d JOIN service s ON s.id = d.service_id "
        "JOIN environment e ON e.id = d.environment_id LEFT JOIN release r ON r.id = d.release_id "
        "WHERE d.environment_id = ? AND d.status = ? ORDER BY d.created_at DESC, d.id LIMIT ?")

    def raw_listing(sql: str, params: tuple[Any, ...]) -> list[Any]:
        return [(deployment_row(r), service_row(r, 12), env_row(r, 22), release_row(r, 29))
                for r in raw.execute(sql, params).fetchall()]

    def raw_page(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            found = raw_listing(page_sql, (d.prod_id, "success", 20))
        return found

    def listing_answer(found: Any, run: int) -> Any:
        if found and isinstance(found[0], tuple):
            return [(dep[0], svc[1], env[2], rel[2] if rel else None, dep[8]) for dep, svc, env, rel in found]
        return [(x.id, x.service.name, x.environment.slug, x.release.version if x.release_id else None, x.created_at)
                for x in found]

    def plain_select() -> Any:
        return (PlainDeployment.select(PlainDeployment, PlainService, PlainEnvironment, PlainRelease)
                .join_from(PlainDeployment, PlainService).join_from(PlainDeployment, PlainEnvironment)
                .join_from(PlainDeployment, PlainRelease, peewee.JOIN.LEFT_OUTER))

    def peewee_page(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            found = list(plain_select()
                         .where(PlainDeployment.environment == d.prod_id, PlainDeployment.status == "success")
                         .order_by(PlainDeployment.created_at.desc(), PlainDeployment.id).limit(20))
        return found

    def orm_page(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            found = deployments.find(environment=d.prod_id, status="success", order_by=["-created_at"], limit=20)
        return found

    out.append(Workload("filtered, ordered page of 20 (find)", "op", int(300 * scale),
                        {"sqlite": 3, "postgres": 1.5},
                        {"raw": raw_page, "peewee": peewee_page, "orm-kit": orm_page}, _same(listing_answer)))

    # the platform: deployed where, a history page, the dependency graph
    deployed_sql = raw.q(
        f"SELECT {select_list('d', d_cols)}, {select_list('s', s_cols)}, {select_list('e', e_cols)}, "
        f"{select_list('r', r_cols)} FROM deployment d JOIN service s ON s.id = d.service_id "
        "JOIN environment e ON e.id = d.environment_id LEFT JOIN release r ON r.id = d.release_id "
        "JOIN (SELECT id AS deployment_id, ROW_NUMBER() OVER (PARTITION BY service_id, environment_id "
        "ORDER BY COALESCE(finished_at, created_at) DESC, id DESC) AS position FROM deployment "
        "WHERE status = 'success' AND environment_id = ?) latest ON d.id = latest.deployment_id "
        "WHERE latest.position = 1 ORDER BY s.name, e.name")

    def raw_deployed(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            found = raw_listing(deployed_sql, (d.prod_id,))
        return found

    def peewee_deployed(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            ranked_by = peewee.fn.COALESCE(PlainDeployment.finished_at, PlainDeployment.created_at)
            rank = peewee.fn.ROW_NUMBER().over(partition_by=[PlainDeployment.service, PlainDeployment.environment],
                                               order_by=[ranked_by.desc(), PlainDeployment.id.desc()])
            latest = (PlainDeployment.select(PlainDeployment.id.alias("deployment_id"), rank.alias("position"))
                      .where(PlainDeployment.status == "success", PlainDeployment.environment == d.prod_id)
                      .alias("latest"))
            found = list(plain_select()
                         .join_from(PlainDeployment, latest, on=(PlainDeployment.id == latest.c.deployment_id))
                         .where(latest.c.position == 1).order_by(PlainService.name, PlainEnvironment.name))
        return found

    def orm_deployed(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            found = deployments.deployed_where(environment=d.prod_id)
        return found

    out.append(Workload("deployed where (one environment)", "op", max(3, int(100 * scale)), {},
                        {"raw": raw_deployed, "peewee": peewee_deployed, "orm-kit": orm_deployed},
                        _same(listing_answer)))

    history_sql = raw.q(
        f"SELECT {select_list('d', d_cols)}, {select_list('s', s_cols)}, {select_list('e', e_cols)}, "
        f"{select_list('r', r_cols)} FROM deployment d JOIN service s ON s.id = d.service_id "
        "JOIN environment e ON e.id = d.environment_id LEFT JOIN release r ON r.id = d.release_id "
        "WHERE d.service_id = ? AND d.environment_id = ? ORDER BY d.created_at DESC, d.id DESC LIMIT ? OFFSET ?")
    history_count = raw.q("SELECT COUNT(*) FROM deployment d JOIN service s ON s.id = d.service_id "
                          "JOIN environment e ON e.id = d.environment_id "
                          "WHERE d.service_id = ? AND d.environment_id = ?")

    def raw_history(n: int, run: int) -> Any:
        found = None
        key = raw.p_uuid(d.busy_service)
        for _ in range(n):
            rows = raw_listing(history_sql, (key, d.prod_id, 20, 20))
            total = raw.execute(history_count, (key, d.prod_id)).fetchone()[0]
            found = (total, rows)
        return found

    def peewee_history(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            query = (plain_select().where(PlainDeployment.service == d.busy_service,
                                          PlainDeployment.environment == d.prod_id)
                     .order_by(PlainDeployment.created_at.desc(), PlainDeployment.id.desc()))
            found = (query.count(), list(query.paginate(2, 20)))
        return found

    def orm_history(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            page = deployments.history(service=d.busy_service, environment=d.prod_id, page=2, size=20)
            found = (page.total, page.items)
        return found

    def history_answer(found: Any, run: int) -> Any:
        return (found[0], listing_answer(list(found[1]), run))

    out.append(Workload("history page (page 2 of one service in one environment)", "op", int(300 * scale), {},
                        {"raw": raw_history, "peewee": peewee_history, "orm-kit": orm_history},
                        _same(history_answer)))

    out.append(graph_workload(b, d, services, scale))
    out.append(bulk_workload(b, d, scale))
    out.extend(set_workloads(b, d, scale))
    out.append(insert_many_workload(b, scale))
    for workload in out:
        workload.goal = {k: v for k, v in workload.goal.items() if k == kind}
        if workload.before is None and workload.after is None and workload.size >= 20:
            workload.rounds = 10
    return out


def graph_workload(b: Backend, d: Data, services: ServiceRepository, scale: float) -> Workload:
    raw = b.raw
    reach = ("WITH RECURSIVE reach(id, depth) AS (SELECT id, 0 FROM service WHERE id = ? UNION "
             "SELECT l.{far}, reach.depth + 1 FROM service_dependency l JOIN reach ON l.{near} = reach.id "
             "WHERE reach.depth < ?) ")
    edges = ("SELECT l.service_id, l.depends_on_id, l.kind, MIN(reach.depth) + 1 FROM service_dependency l "
             "JOIN reach ON l.{near} = reach.id WHERE reach.depth < ? GROUP BY l.service_id, l.depends_on_id, l.kind")
    down = raw.q(reach.format(near="service_id", far="depends_on_id") + edges.format(near="service_id"))
    up = raw.q(reach.format(near="depends_on_id", far="service_id") + edges.format(near="depends_on_id"))
    names_sql = "SELECT id, name FROM service WHERE id IN ({})"

    def raw_graph(n: int, run: int) -> Any:
        found = None
        key = raw.p_uuid(d.graph_root)
        for _ in range(n):
            walks = [[(raw.uuid(a), raw.uuid(b_), kind, int(h)) for a, b_, kind, h in
                      raw.execute(sql, (key, 3, 3)).fetchall()] for sql in (down, up)]
            ids = {row[0] for w in walks for row in w} | {row[1] for w in walks for row in w} | {d.graph_root}
            marks = ", ".join(["?"] * len(ids))
            names = {raw.uuid(i): name for i, name in raw.rows(names_sql.format(marks), [raw.p_uuid(i) for i in ids])}
            found = [sorted((h, names[a], names[b_], kind) for a, b_, kind, h in w) for w in walks]
        return found

    def plain_reach(downstream: bool) -> Any:
        base = PlainService.select(PlainService.id, peewee.SQL("0")).where(PlainService.id == d.graph_root)
        cte = base.cte("reach", recursive=True, columns=("id", "depth"))
        link = PlainServiceDependency.alias("l")
        near, far = (link.service, link.depends_on) if downstream else (link.depends_on, link.service)
        step = link.select(far, cte.c.depth + peewee.SQL("1")).join(cte, on=(near == cte.c.id)).where(cte.c.depth < 3)
        return cte.union(step)

    def peewee_graph(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            walks = []
            for downstream in (True, False):
                cte = plain_reach(downstream)
                link = PlainServiceDependency
                near = link.service if downstream else link.depends_on
                query = (link.select(link.service, link.depends_on, link.kind, peewee.fn.MIN(cte.c.depth) + 1)
                         .join(cte, on=(near == cte.c.id)).where(cte.c.depth < 3)
                         .group_by(link.service, link.depends_on, link.kind).with_cte(cte).tuples())
                walks.append([(uuid.UUID(str(a)), uuid.UUID(str(b_)), kind, int(h)) for a, b_, kind, h in query])
            ids = {row[0] for w in walks for row in w} | {row[1] for w in walks for row in w} | {d.graph_root}
            names = {s.id: s.name for s in PlainService.select(PlainService.id, PlainService.name)
                     .where(PlainService.id.in_(list(ids)))}
            found = [sorted((h, names[a], names[b_], kind) for a, b_, kind, h in w) for w in walks]
        return found

    def orm_graph(n: int, run: int) -> Any:
        found = None
        for _ in range(n):
            graph = services.dependency_graph(d.graph_root, depth=3)
            found = [sorted((e.depth, e.service.name, e.depends_on.name, e.kind) for e in edges_)
                     for edges_ in (graph.dependencies, graph.dependents)]
        return found

    return Workload("dependency graph (depth 3, both ways)", "op", max(3, int(100 * scale)), {},
                    {"raw": raw_graph, "peewee": peewee_graph, "orm-kit": orm_graph},
                    _same(lambda found, run: found))


DEPLOYMENT_COLUMNS = ("id", "service_id", "environment_id", "release_id", "status", "triggered_by", "lock_version",
                      "created_at", "started_at", "finished_at", "duration_seconds")


def _deployment_rows(d: Data, count: int, marker: str, seed: int = 9) -> list[tuple[Any, ...]]:
    """Rows for deployment in the order of DEPLOYMENT_COLUMNS without the duration (the writers derive it)."""
    rng = random.Random(seed)
    base = datetime.datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        service = d.services[n % len(d.services)]
        created = base + datetime.timedelta(seconds=n * 7)
        started = created + datetime.timedelta(seconds=rng.randrange(5, 60))
        rows.append((uuid.UUID(int=rng.getrandbits(128), version=4), service, d.envs[n % 3], d.releases.get(service),
                     ("success", "failed", "canceled")[n % 3], marker, 1, created, started,
                     started + datetime.timedelta(seconds=rng.randrange(30, 900))))
    return rows


def _duration(started: datetime.datetime, finished: datetime.datetime) -> int:
    return round((finished - started).total_seconds())


def _insert_raw(raw: Raw, rows: list[tuple[Any, ...]]) -> None:
    u, t = raw.p_uuid, raw.p_time
    raw.executemany(
        f"INSERT INTO deployment ({', '.join(DEPLOYMENT_COLUMNS)}) VALUES ({', '.join(['?'] * 11)})",
        [(u(r[0]), u(r[1]), r[2], r[3], r[4], r[5], r[6], t(r[7]), t(r[8]), t(r[9]), _duration(r[8], r[9]))
         for r in rows])


def bulk_workload(b: Backend, d: Data, scale: float) -> Workload:
    raw = b.raw
    count = int(100_000 * scale)
    marker = "bulk-insert"
    rows = _deployment_rows(d, count, marker)

    def raw_bulk(n: int, run: int) -> Any:
        _insert_raw(raw, rows)

    plain_fields = [getattr(PlainDeployment, c[:-3] if c.endswith("_id") and c != "id" else c) for c in
                    DEPLOYMENT_COLUMNS]

    def peewee_bulk(n: int, run: int) -> Any:
        chunk = rows_per_chunk(b.plain, len(plain_fields))
        for start in range(0, len(rows), chunk):
            PlainDeployment.insert_many([(*r, _duration(r[8], r[9])) for r in rows[start:start + chunk]],
                                        plain_fields).execute()

    names = ["id", "service", "environment", "release", "status", "triggered_by", "lock_version", "created_at",
             "started_at", "finished_at"]

    def orm_bulk(n: int, run: int) -> Any:
        with BulkWriter(b.orm) as writer:
            writer.table(Deployment, names)
            for row in rows:
                writer.add(Deployment, row)

    def stored(_: Any, run: int) -> Any:
        found = raw.rows(f"SELECT {', '.join(DEPLOYMENT_COLUMNS)} FROM deployment WHERE triggered_by = ?", (marker,))
        return sorted((raw.uuid(r[0]), raw.uuid(r[1]), *r[2:7], raw.time(r[7]), raw.time(r[8]), raw.time(r[9]), r[10])
                      for r in found)

    def clear(who: str, run: int) -> None:
        with b.orm.atomic():
            b.orm.execute_sql(f"DELETE FROM deployment WHERE triggered_by = {b.orm.param}", (marker,))

    return Workload(f"validated bulk insert of {count:,} rows (BulkWriter)", "row", count,
                    {"sqlite": 1.5, "postgres": 1.0}, {"raw": raw_bulk, "peewee": peewee_bulk, "orm-kit": orm_bulk},
                    _same(stored), transaction=True, after=clear, peewee_goal=True)


def set_workloads(b: Backend, d: Data, scale: float) -> list[Workload]:
    raw = b.raw
    count = max(100, int(10_000 * scale))
    marker = "set-based"
    rows = _deployment_rows(d, count, marker, seed=11)
    deployments = DeploymentRepository(b.orm)

    def fill(who: str, run: int) -> None:
        raw.begin()
        _insert_raw(raw, rows)
        raw.commit()

    def clear(who: str, run: int) -> None:
        raw.begin()
        raw.execute(raw.q("DELETE FROM deployment WHERE triggered_by = ?"), (marker,))
        raw.commit()

    update_sql = raw.q("UPDATE deployment SET status = ?, lock_version = lock_version + 1 WHERE triggered_by = ?")

    def raw_update(n: int, run: int) -> Any:
        return raw.execute(update_sql, ("canceled", marker)).rowcount

    def peewee_update(n: int, run: int) -> Any:
        return (PlainDeployment.update(status="canceled", lock_version=PlainDeployment.lock_version + 1)
                .where(PlainDeployment.triggered_by == marker).execute())

    def orm_update(n: int, run: int) -> Any:
        return deployments.update_where({"status": "canceled"}, triggered_by=marker)

    def updated(changed: Any, run: int) -> Any:
        return changed, raw.rows("SELECT status, lock_version, COUNT(*) FROM deployment WHERE triggered_by = ? "
                                 "GROUP BY status, lock_version", (marker,))

    delete_sql = raw.q("DELETE FROM deployment WHERE triggered_by = ?")

    def raw_delete(n: int, run: int) -> Any:
        return raw.execute(delete_sql, (marker,)).rowcount

    def peewee_delete(n: int, run: int) -> Any:
        return PlainDeployment.delete().where(PlainDeployment.triggered_by == marker).execute()

    def orm_delete(n: int, run: int) -> Any:
        return deployments.delete_where(triggered_by=marker)

    def deleted(gone: Any, run: int) -> Any:
        return gone, raw.rows("SELECT COUNT(*) FROM deployment WHERE triggered_by = ?", (marker,))

    return [
        Workload(f"one UPDATE of {count:,} rows (update_where)", "op", 1, {"sqlite": 1.1},
                 {"raw": raw_update, "peewee": peewee_update, "orm-kit": orm_update}, _same(updated),
                 transaction=True, before=fill, after=clear, runs=None if scale < 1 else 9),
        Workload(f"one DELETE of {count:,} rows (delete_where)", "op", 1, {"sqlite": 1.1},
                 {"raw": raw_delete, "peewee": peewee_delete, "orm-kit": orm_delete}, _same(deleted),
                 transaction=True, before=fill, after=clear, runs=None if scale < 1 else 9),
    ]


def insert_many_workload(b: Backend, scale: float) -> Workload:
    raw = b.raw
    per = 500
    batches = max(2, int(20 * scale))

    def names(who: str, run: int, batch: int) -> list[str]:
        return [f"i{run}-{who}-{batch}-{i}" for i in range(per)]

    insert = raw.q("INSERT INTO team (name, display_name, email, parent_id, created_at) VALUES (?, ?, ?, ?, ?)")

    def raw_many(n: int, run: int) -> Any:
        for batch in range(n // per):
            stamp = raw.p_time(utcnow())
            raw.executemany(insert, [(name, None, f"{name}@example.com", None, stamp)
                                     for name in names("raw", run, batch)])

    def model_many(who: str, model: Any) -> Run:
        def run_(n: int, run: int) -> Any:
            for batch in range(n // per):
                stamp = utcnow()
                model.insert_many([{"name": name, "email": f"{name}@example.com", "created_at": stamp}
                                   for name in names(who, run, batch)]).execute()
        return run_

    def stored(prefix: str) -> Check:
        def read(_: Any, run: int) -> Any:
            rows = raw.rows("SELECT name, display_name, email, parent_id FROM team WHERE name LIKE ?",
                            (f"i{run}-{prefix}-%",))
            return sorted((r[0].split("-", 2)[2], r[1], r[2].split("-", 2)[2], r[3]) for r in rows)
        return read

    return Workload(f"Model.insert_many ({per} rows a statement)", "row", per * batches, {}, rounds=batches,
                    run={"raw": raw_many, "peewee": model_many("peewee", PlainTeam),
                         "orm-kit": model_many("orm", Team)},
                    answer={"raw": stored("raw"), "peewee": stored("peewee"), "orm-kit": stored("orm")},
                    transaction=True)


# --- the million: seed generate and DORA ----------------------------------------------------------------

def generate_workload(b: Backend, deployments: int, kept: dict[str, str]) -> Workload:
    """``seed generate`` of ``deployments`` into a fresh database per contender; orm-kit's is kept for DORA."""
    urls: dict[str, str] = {}

    def fresh(who: str, run: int) -> None:
        urls[who] = b.scratch(f"gen_{who.replace('-', '')}")
        db = open_database(urls[who])
        db.bind(MODELS)
        migrate_up(db)
        db.close()

    def with_db(url: str, bind: Callable[[peewee.Database], None]) -> peewee.Database:
        db = open_database(url)
        bind(db)
        return db

    def orm_generate(n: int, run: int) -> Any:
        db = with_db(urls["orm-kit"], lambda db: db.bind(MODELS))
        try:
            generate(db, deployments=deployments, random_seed=7)
            return urls["orm-kit"]
        finally:
            db.close()
            b.orm.bind(MODELS)

    def streamed(db: peewee.Database, write: Callable[[Any, list[tuple[Any, ...]]], None]) -> int:
        """The generator's rows, written per table in chunks, parents flushed first (as BulkWriter does)."""
        buffers: dict[Any, list[tuple[Any, ...]]] = {Release: [], Deployment: [], Incident: []}
        chunk = 2000
        written = 0

        def flush() -> None:
            nonlocal written
            for model, rows in buffers.items():
                if rows:
                    write(model, rows)
                    written += len(rows)
                    rows.clear()

        for model, row in synthetic_rows(db, deployments=deployments, random_seed=7):
            buffers[model].append(row)
            if len(buffers[model]) >= chunk:
                flush()
        flush()
        sync_id_sequence(db, Release)
        return written

    def raw_generate(n: int, run: int) -> Any:
        db = with_db(urls["raw"], lambda db: db.bind(MODELS))  # the world (team, services) is made through it
        postgres = b.postgres
        raw = Raw(db.connection(), postgres)  # the same connection: one transaction for the world and the rows
        u, t = raw.p_uuid, raw.p_time
        sql = {model: (f"INSERT INTO {model._meta.table_name} ({', '.join(c)}) VALUES ({', '.join(['?'] * len(c))})")
               for model, c in ((Release, [*(f + "_id" if f == "service" else f for f in RELEASE_FIELDS)]),
                                (Deployment, [*(_column(f) for f in DEPLOYMENT_FIELDS), "duration_seconds"]),
                                (Incident, [_column(f) for f in INCIDENT_FIELDS]))}

        def convert(model: Any, row: tuple[Any, ...]) -> tuple[Any, ...]:
            if model is Release:
                return (row[0], u(row[1]), row[2], row[3], row[4], t(row[5]), t(row[6]))
            if model is Deployment:
                return (u(row[0]), u(row[1]), row[2], row[3], u(row[4]), row[5], row[6], row[7], t(row[8]),
                        t(row[9]), t(row[10]), _duration(row[9], row[10]))
            return (u(row[0]), row[1], u(row[2]), row[3], row[4], t(row[5]), t(row[6]))

        def write(model: Any, rows: list[tuple[Any, ...]]) -> None:
            raw.executemany(sql[model], [convert(model, r) for r in rows])

        try:
            with larger_cache(db), db.atomic():
                streamed(db, write)
            return urls["raw"]
        finally:
            db.close()
            b.orm.bind(MODELS)

    def peewee_generate(n: int, run: int) -> Any:
        db = with_db(urls["peewee"], lambda db: db.bind(MODELS))
        plain = {Release: (PlainRelease, RELEASE_FIELDS), Deployment: (PlainDeployment, DEPLOYMENT_FIELDS),
                 Incident: (PlainIncident, INCIDENT_FIELDS)}
        bind_plain(db)

        def write(model: Any, rows: list[tuple[Any, ...]]) -> None:
            target, names = plain[model]
            columns = [getattr(target, name) for name in names]
            if model is Deployment:
                columns.append(PlainDeployment.duration_seconds)
                rows = [(*r, _duration(r[9], r[10])) for r in rows]
            size = rows_per_chunk(db, len(columns))
            for start in range(0, len(rows), size):
                target.insert_many(rows[start:start + size], columns).execute()

        try:
            with larger_cache(db), db.atomic():
                streamed(db, write)
            return urls["peewee"]
        finally:
            db.close()
            b.orm.bind(MODELS)
            bind_plain(b.plain)

    def counted(url: str, run: int) -> Any:
        db = open_database(url)
        try:
            return [tuple(r) for r in db.execute_sql(
                "SELECT status, COUNT(*), SUM(duration_seconds) FROM deployment GROUP BY status ORDER BY status")] + [
                db.execute_sql("SELECT COUNT(*) FROM release").fetchone()[0],
                db.execute_sql("SELECT COUNT(*) FROM incident").fetchone()[0]]
        finally:
            db.close()

    def remember(who: str, run: int) -> None:
        kept[who] = urls[who]

    return Workload(f"seed generate of {deployments:,} deployments (per row written)", "row", deployments, {},
                    {"raw": raw_generate, "peewee": peewee_generate, "orm-kit": orm_generate}, _same(counted),
                    before=fresh, after=remember, runs=1)


def _column(name: str) -> str:
    return name + "_id" if name in ("service", "environment", "release", "rollback_of", "caused_by") else name


def dora_workload(b: Backend, url: str, deployments: int) -> tuple[Workload, list[Any]]:
    """DORA metrics for the 90 days of a generated history, on the database orm-kit generated."""
    db = open_database(url)
    db.bind(MODELS)
    bind_plain(db)
    raw_connection: Any
    if b.postgres:
        import psycopg

        raw_connection = psycopg.connect(url, autocommit=True)
    else:
        raw_connection = sqlite3.connect(urlsplit(url).path[1:], isolation_level=None)
        sqlite_pragmas(raw_connection)
    raw = Raw(raw_connection, b.postgres)
    start = datetime.datetime(2026, 1, 5, tzinfo=UTC)
    end = start + datetime.timedelta(days=91)
    changes = raw.q(
        "SELECT d.finished_at, r.committed_at, CASE WHEN EXISTS (SELECT 1 FROM incident i WHERE i.caused_by_id = d.id) "
        "OR EXISTS (SELECT 1 FROM deployment rb WHERE rb.rollback_of_id = d.id) THEN 1 ELSE 0 END "
        "FROM deployment d JOIN environment e ON e.id = d.environment_id LEFT JOIN release r ON r.id = d.release_id "
        "WHERE e.tier = 'production' AND d.status = 'success' AND d.finished_at >= ? AND d.finished_at < ?")
    restores = raw.q(
        "SELECT i.opened_at, i.resolved_at FROM incident i JOIN environment e ON e.id = i.environment_id "
        "WHERE e.tier = 'production' AND i.resolved_at IS NOT NULL AND i.opened_at >= ? AND i.opened_at < ?")

    def summary(rows: Any, restored: Any) -> tuple[Any, ...]:
        count = failures = 0
        leads = []
        for finished, committed, failed in rows:
            count += 1
            failures += int(failed)
            if committed is not None:
                leads.append((finished - committed).total_seconds())
        fixes = [(resolved - opened).total_seconds() for opened, resolved in restored]

        def median(seconds: list[float]) -> float | None:  # as a timedelta holds it: whole microseconds
            return datetime.timedelta(seconds=statistics.median(seconds)).total_seconds() if seconds else None

        return (count, failures, median(leads), len(fixes), median(fixes))

    def raw_dora(n: int, run: int) -> Any:
        period = (raw.p_time(start), raw.p_time(end))
        t = raw.time
        rows = [(t(f), t(c), x) for f, c, x in raw.execute(changes, period).fetchall()]
        restored = [(t(o), t(r)) for o, r in raw.execute(restores, period).fetchall()]
        return summary(rows, restored)

    def peewee_dora(n: int, run: int) -> Any:
        incident = PlainIncident.select(peewee.SQL("1")).where(PlainIncident.caused_by == PlainDeployment.id)
        rb = PlainDeployment.alias("rb")
        rollback = rb.select(peewee.SQL("1")).where(rb.rollback_of == PlainDeployment.id)
        failed = peewee.Case(None, [(peewee.fn.EXISTS(incident) | peewee.fn.EXISTS(rollback), 1)], 0)
        rows = (PlainDeployment.select(PlainDeployment.finished_at, PlainRelease.committed_at, failed)
                .join_from(PlainDeployment, PlainEnvironment)
                .join_from(PlainDeployment, PlainRelease, peewee.JOIN.LEFT_OUTER)
                .where(PlainEnvironment.tier == "production", PlainDeployment.status == "success",
                       PlainDeployment.finished_at >= start, PlainDeployment.finished_at < end).tuples())
        restored = (PlainIncident.select(PlainIncident.opened_at, PlainIncident.resolved_at).join(PlainEnvironment)
                    .where(PlainEnvironment.tier == "production", PlainIncident.resolved_at.is_null(False),
                           PlainIncident.opened_at >= start, PlainIncident.opened_at < end).tuples())
        return summary(list(rows), list(restored))

    def orm_dora(n: int, run: int) -> Any:
        m = dora_metrics(db, start, end)
        return (m.deployments, m.failed_changes, m.lead_time.total_seconds() if m.lead_time else None,
                m.restored_incidents, m.time_to_restore.total_seconds() if m.time_to_restore else None)

    workload = Workload(f"DORA metrics over {deployments:,} deployments", "op", 1, {},
                        {"raw": raw_dora, "peewee": peewee_dora, "orm-kit": orm_dora}, _same(lambda found, run: found))
    return workload, [db, raw_connection]


