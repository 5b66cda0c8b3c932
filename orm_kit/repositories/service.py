"""Services: by name, with their deployments, their dependency graph, and by owning team.

    services = ServiceRepository(db)
    svc = services.find_by_name("checkout-api")                 # Service | None
    detail = services.find_with_deployments(svc)                # 1 query (2 by key), whatever the count
    graph = services.dependency_graph(svc, depth=3)             # 3 queries (recursive CTEs)
    owned = services.owned_by_team(team)                        # the team and its sub-teams
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import peewee

from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError, NotFoundError
from orm_kit.models import DependencyKind, Deployment, Service, ServiceDependency, Team
from orm_kit.query.prepared import Param
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
_LISTED_NODES = 256  # up to this many services are read by key; a larger graph by its walks again
_NEWEST_FIRST = ("-created_at", "-id")


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
    kind: DependencyKind
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
        """The service and all its deployments, newest first, with environment and release; NotFoundError if none.

        Two queries for a key; one for a ``Service`` row already read, which is used as it is.
        """
        service = key if isinstance(key, Service) else self.get(key)
        deployments = self.children_of(service, Deployment, order_by=_NEWEST_FIRST, related=("environment", "release"))
        return ServiceDeployments(service=service, deployments=deployments)

    def owned_by_team(self, team: Team | int, *, include_subteams: bool = True) -> list[Service]:
        """Services owned by ``team`` (and, by default, by every team below it), by name; one query."""
        team_id = _team_id(team)
        if not include_subteams:
            return self.find(owner=team_id, order_by=["name"])

        def build() -> peewee.Query:
            tree = team_tree(Param(0))
            query: peewee.Query = (self.select().where(Service.owner.in_(tree.select_from(tree.c.id)))
                                   .with_cte(tree).order_by(Service.name))
            return query

        return self.prepared("owned_by_team", build).rows(self.db, [self.param(Team.id, team_id)])

    def dependency_graph(self, root: Service | uuid.UUID | str, *, depth: int = 3) -> DependencyGraph:
        """Dependencies and dependents of ``root`` to ``depth`` hops, cycles included once; at most three queries.

        The two walks, then one query for the services on them (the root among them when it is given by key).
        Each is built once: the walks run with the root and the depth as parameters, and the services
        are read by key (by walking again, as subqueries, when more than 256 are met).
        """
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_GRAPH_DEPTH:
            raise InvalidQueryError(
                f"graph depth must be a whole number from 1 to {MAX_GRAPH_DEPTH} (got {shown(depth)})")
        if isinstance(root, Service):
            root_id: uuid.UUID = root.id
        elif field_type_error(Service.id, root) is None:
            root_id = _as_uuid(root)
        else:
            raise NotFoundError("Service", root)
        values = [self.param(Service.id, root_id), depth]
        down_rows = [_edge_row(row) for row in self.prepared(
            "dependencies", lambda: _edges(_reach(downstream=True), downstream=True)).rows(self.db, values)]
        up_rows = [_edge_row(row) for row in self.prepared(
            "dependents", lambda: _edges(_reach(downstream=False), downstream=False)).rows(self.db, values)]
        ids = {row[0] for row in down_rows + up_rows} | {row[1] for row in down_rows + up_rows}
        nodes: dict[uuid.UUID, Service] = {root.id: root} if isinstance(root, Service) else {}
        missing = (ids | {root_id}) - nodes.keys()
        if len(missing) <= _LISTED_NODES:
            # The services the walks met, by key: one array parameter on PostgreSQL, a short list on SQLite.
            found = self.find(id__in=sorted(missing)) if missing else []
        else:
            # A graph this large: the walks again, as subqueries, rather than a parameter list that grows with it.
            def involved() -> peewee.Query:
                down, up = _reach(downstream=True), _reach(downstream=False)
                query: peewee.Query = self.select().where(Service.id.in_(down.select_from(down.c.id))
                                                          | Service.id.in_(up.select_from(up.c.id)))
                return query

            found = self.prepared("graph_nodes", involved).rows(self.db, values)
        nodes.update({s.id: s for s in found if s.id not in nodes})
        service = nodes.get(root_id)
        if service is None:
            raise NotFoundError("Service", root)

        def edges(rows: list[tuple[uuid.UUID, uuid.UUID, DependencyKind, int]]) -> tuple[DependencyEdge, ...]:
            found = [DependencyEdge(nodes[a], nodes[b], kind, int(hops)) for a, b, kind, hops in rows]
            return tuple(sorted(found, key=lambda e: (e.depth, e.service.name, e.depends_on.name)))

        return DependencyGraph(root=service, depth=depth, dependencies=edges(down_rows), dependents=edges(up_rows))


def _edge_row(row: tuple[object, object, object, object]) -> tuple[uuid.UUID, uuid.UUID, DependencyKind, int]:
    # Columns of a CTE carry no field, so peewee leaves them raw: SQLite gives the UUID as hex text. The kind is
    # one of DEPENDENCY_KINDS: the column's CHECK constraint holds it to them.
    a, b, kind, hops = row
    return _as_uuid(a), _as_uuid(b), cast(DependencyKind, str(kind)), int(str(hops))


def _as_uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _reach(*, downstream: bool) -> peewee.CTE:
    """Recursive CTE ``(id, depth)`` of the services within ``Param(1)`` hops of the service ``Param(0)``.

    The walk is over services, not edges: ``UNION`` keeps one row per (service, hops), so a service
    met again through a cycle is expanded once per hop count, at most ``depth`` times -- the work is
    bounded by ``depth * edges`` whatever the cycles. (Walking edges instead re-expands a service
    once per edge that reaches it, which is quadratic on a fan with back edges.)
    """
    name = "down" if downstream else "up"
    base = Service.select(Service.id, peewee.SQL("0")).where(Service.id == Param(0))
    reach = base.cte(name, recursive=True, columns=("id", "depth"))
    link = ServiceDependency.alias(f"{name}_link")
    near, far = (link.service, link.depends_on) if downstream else (link.depends_on, link.service)
    step = (link.select(far, reach.c.depth + peewee.SQL("1"))
            .join(reach, on=(near == reach.c.id)).where(reach.c.depth < Param(1)))
    return reach.union(step)


def _edges(reach: peewee.CTE, *, downstream: bool) -> peewee.SelectQuery:
    """Each edge leaving a reached service (short of ``Param(1)`` hops), once, at its nearest hop count."""
    link = ServiceDependency
    near = link.service if downstream else link.depends_on
    query: peewee.SelectQuery = (
        link.select(link.service, link.depends_on, link.kind, peewee.fn.MIN(reach.c.depth) + peewee.SQL("1"))
        .join(reach, on=(near == reach.c.id))
        .where(reach.c.depth < Param(1))
        .group_by(link.service, link.depends_on, link.kind)
        .with_cte(reach)
        .tuples()
    )
    return query
