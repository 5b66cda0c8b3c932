"""Services: by name, with their deployments, their dependency graph, and by owning team.

    services = ServiceRepository(db)
    svc = services.find_by_name("checkout-api")                 # Service | None
    detail = services.find_with_deployments(svc.id)             # 2 queries, whatever the count
    graph = services.dependency_graph(svc, depth=3)             # 3 queries (recursive CTEs)
    owned = services.owned_by_team(team)                        # the team and its sub-teams
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import peewee

from orm_kit.errors import InvalidQueryError, NotFoundError
from orm_kit.models import Deployment, Environment, Release, Service, ServiceDependency, Team
from orm_kit.repositories.team import _team_id, team_tree
from orm_kit.repository import Repository
from orm_kit.validation import field_type_error

__all__ = [
    "MAX_GRAPH_DEPTH",
    "DependencyEdge",
    "DependencyGraph",
    "ServiceDeployments",
    "ServiceRepository",
]

MAX_GRAPH_DEPTH = 32


@dataclass(frozen=True)
class ServiceDeployments:
    """A service and all its deployments, newest first, each with its environment and release loaded."""

    service: Service
    deployments: tuple[Deployment, ...]


@dataclass(frozen=True)
class DependencyEdge:
    """``service`` depends on ``depends_on`` (``kind``); ``depth`` hops from the root reach this edge's far end."""

    service: Service
    depends_on: Service
    kind: str
    depth: int


@dataclass(frozen=True)
class DependencyGraph:
    """What ``root`` depends on and what depends on it, to ``depth`` hops, each edge once (at its nearest)."""

    root: Service
    depth: int
    dependencies: tuple[DependencyEdge, ...]
    dependents: tuple[DependencyEdge, ...]


class ServiceRepository(Repository[Service]):
    """Services of the platform."""

    model = Service
    search_fields = ("name", "description")
    default_order = ("name",)

    def select(self) -> peewee.ModelSelect[Service]:
        """Services with their owning team loaded in the same query."""
        query: peewee.ModelSelect[Service] = Service.select(Service, Team).join(Team)
        return query

    def find_by_name(self, name: str) -> Service | None:
        """The service called ``name``, or ``None`` (one prepared query)."""
        return self.find_unique("name", name)

    def find_with_deployments(self, key: Service | uuid.UUID | str) -> ServiceDeployments:
        """The service and all its deployments, newest first, in two queries; NotFoundError if no service."""
        service = self.get(key.id if isinstance(key, Service) else key)
        query = (Deployment.select(Deployment, Environment, Release)
                 .join_from(Deployment, Environment)
                 .join_from(Deployment, Release, peewee.JOIN.LEFT_OUTER)
                 .where(Deployment.service == service.id)
                 .order_by(Deployment.created_at.desc(), Deployment.id.desc()))
        deployments = tuple(query.execute(self.db))
        for deployment in deployments:
            deployment.service = service  # already loaded: reading d.service costs no query
        return ServiceDeployments(service=service, deployments=deployments)

    def owned_by_team(self, team: Team | int, *, include_subteams: bool = True) -> list[Service]:
        """Services owned by ``team`` (and, by default, by every team below it), by name; one query."""
        team_id = _team_id(team)
        if not include_subteams:
            return self.find(owner=team_id, order_by=["name"])
        tree = team_tree(team_id)
        query = (self.select().where(Service.owner.in_(tree.select_from(tree.c.id)))
                 .with_cte(tree).order_by(Service.name))
        return list(query.execute(self.db))

    def dependency_graph(self, root: Service | uuid.UUID | str, *, depth: int = 3) -> DependencyGraph:
        """Dependencies and dependents of ``root`` to ``depth`` hops, cycles included once; at most three queries.

        The two walks, then one query for the services on them (the root among them when it is given by key).
        """
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_GRAPH_DEPTH:
            raise InvalidQueryError(f"graph depth must be a whole number from 1 to {MAX_GRAPH_DEPTH} (got {depth!r})")
        if isinstance(root, Service):
            root_id: uuid.UUID = root.id
        elif field_type_error(Service.id, root) is None:
            root_id = _as_uuid(root)
        else:
            raise NotFoundError("Service", root)
        down = _reach(root_id, depth, downstream=True)
        up = _reach(root_id, depth, downstream=False)
        down_rows = [_edge_row(row) for row in _edges(down, depth, downstream=True).execute(self.db)]
        up_rows = [_edge_row(row) for row in _edges(up, depth, downstream=False).execute(self.db)]
        ids = {row[0] for row in down_rows + up_rows} | {row[1] for row in down_rows + up_rows}
        nodes: dict[uuid.UUID, Service] = {root.id: root} if isinstance(root, Service) else {}
        if root_id not in nodes or ids - nodes.keys():
            # The node ids come from the same walks (which start at the root, so a root given by key is
            # read here too), as subqueries: no parameter list that grows with the graph.
            involved = self.select().where(Service.id.in_(down.select_from(down.c.id))
                                           | Service.id.in_(up.select_from(up.c.id)))
            nodes.update({s.id: s for s in involved.execute(self.db) if s.id not in nodes})
        service = nodes.get(root_id)
        if service is None:
            raise NotFoundError("Service", root)

        def edges(rows: list[tuple[uuid.UUID, uuid.UUID, str, int]]) -> tuple[DependencyEdge, ...]:
            found = [DependencyEdge(nodes[a], nodes[b], kind, int(hops)) for a, b, kind, hops in rows]
            return tuple(sorted(found, key=lambda e: (e.depth, e.service.name, e.depends_on.name)))

        return DependencyGraph(root=service, depth=depth, dependencies=edges(down_rows), dependents=edges(up_rows))


def _edge_row(row: tuple[object, object, object, object]) -> tuple[uuid.UUID, uuid.UUID, str, int]:
    # Columns of a CTE carry no field, so peewee leaves them raw: SQLite gives the UUID as hex text.
    a, b, kind, hops = row
    return _as_uuid(a), _as_uuid(b), str(kind), int(str(hops))


def _as_uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _reach(root_id: uuid.UUID, depth: int, *, downstream: bool) -> peewee.CTE:
    """Recursive CTE ``(id, depth)`` of the services within ``depth`` hops of ``root_id``.

    The walk is over services, not edges: ``UNION`` keeps one row per (service, hops), so a service
    met again through a cycle is expanded once per hop count, at most ``depth`` times -- the work is
    bounded by ``depth * edges`` whatever the cycles. (Walking edges instead re-expands a service
    once per edge that reaches it, which is quadratic on a fan with back edges.)
    """
    name = "down" if downstream else "up"
    base = Service.select(Service.id, peewee.SQL("0")).where(Service.id == root_id)
    reach = base.cte(name, recursive=True, columns=("id", "depth"))
    link = ServiceDependency.alias(f"{name}_link")
    near, far = (link.service, link.depends_on) if downstream else (link.depends_on, link.service)
    step = (link.select(far, reach.c.depth + peewee.SQL("1"))
            .join(reach, on=(near == reach.c.id)).where(reach.c.depth < depth))
    return reach.union(step)


def _edges(reach: peewee.CTE, depth: int, *, downstream: bool) -> peewee.SelectQuery:
    """Each edge leaving a reached service (short of ``depth``), once, at its nearest hop count."""
    link = ServiceDependency
    near = link.service if downstream else link.depends_on
    query: peewee.SelectQuery = (
        link.select(link.service, link.depends_on, link.kind, peewee.fn.MIN(reach.c.depth) + peewee.SQL("1"))
        .join(reach, on=(near == reach.c.id))
        .where(reach.c.depth < depth)
        .group_by(link.service, link.depends_on, link.kind)
        .with_cte(reach)
        .tuples()
    )
    return query
