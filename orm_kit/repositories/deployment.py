"""Deployments: what is deployed where, history, where a commit got to, rollback targets, DORA metrics.

    deployments = DeploymentRepository(db)
    deployments.deployed_where(environment=prod)                 # latest success per (service, env); 1 query
    page = deployments.history(service=svc, status="failed", page=2, size=20)     # 1 or 2 queries
    first = deployments.history_after(service=svc, size=20)                      # keyset; 1 query
    more = deployments.history_after(service=svc, size=20, after=first.next_cursor)
    deployments.environments_reached("3f9c2ab6...")              # environments a commit reached
    deployments.previous_successful(bad)                         # the rollback target, or None
    deployments.dora_metrics(start, end)                         # see orm_kit.repositories.dora
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Sequence

import peewee

from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError, NotFoundError
from orm_kit.models import DEPLOYMENT_STATUSES, Deployment, DeploymentStatus, Environment, Release, Service
from orm_kit.query.prepared import Param
from orm_kit.repositories.dora import DoraMetrics, dora_metrics
from orm_kit.repository import CursorPage, Page, Repository

__all__ = ["DeploymentRepository"]

#: One status or several (``history(status="failed")``, ``history(status=["failed", "canceled"])``).
Statuses = DeploymentStatus | Sequence[DeploymentStatus]

_SHA = re.compile(r"[0-9a-f]{40}")
# Newest first; the key breaks ties so pages never overlap or skip.
_HISTORY_ORDER = ("-created_at", "-id")


class DeploymentRepository(Repository[Deployment]):
    """Deployments of services to environments."""

    model = Deployment
    default_order = _HISTORY_ORDER

    def select(self) -> peewee.ModelSelect[Deployment]:
        """Deployments with service, environment and release loaded in the same query (no N+1)."""
        query: peewee.ModelSelect[Deployment] = (
            Deployment.select(Deployment, Service, Environment, Release)
            .join_from(Deployment, Service)
            .join_from(Deployment, Environment)
            .join_from(Deployment, Release, peewee.JOIN.LEFT_OUTER)
        )
        return query

    def deployed_where(self, *, service: Service | uuid.UUID | None = None,
                       environment: Environment | int | None = None) -> list[Deployment]:
        """The latest successful deployment of each (service, environment), by service then environment name.

        "Latest" is by ``finished_at`` (``created_at`` when a success has none), then id. One query:
        ``ROW_NUMBER() OVER (PARTITION BY service, environment ...)``, which SQLite (3.25+) and PostgreSQL
        share; built once per combination of the two optional filters.
        """
        filters: dict[str, object] = {}
        if service is not None:
            filters["service"] = _key(service)
        if environment is not None:
            filters["environment"] = _key(environment)
        shape, values = self._bind(filters)

        def build() -> peewee.Query:
            ranked_by = peewee.fn.COALESCE(Deployment.finished_at, Deployment.created_at)
            rank = peewee.fn.ROW_NUMBER().over(
                partition_by=[Deployment.service, Deployment.environment],
                order_by=[ranked_by.desc(), Deployment.id.desc()],
            )
            latest = (Deployment.select(Deployment.id.alias("deployment_id"), rank.alias("position"))
                      .where(Deployment.status == "success", *self._conditions(shape)))
            latest = latest.alias("latest")
            query: peewee.Query = (self.select()
                                   .join_from(Deployment, latest, on=(Deployment.id == latest.c.deployment_id))
                                   .where(latest.c.position == 1)
                                   .order_by(Service.name, Environment.name))
            return query

        return self.prepared(("deployed_where", shape), build).rows(self.db, values)

    def history(self, *, page: int = 1, size: int = 50, service: Service | uuid.UUID | None = None,
                environment: Environment | int | None = None, status: Statuses | None = None,
                since: datetime.datetime | None = None, until: datetime.datetime | None = None) -> Page[Deployment]:
        """Page ``page`` of deployments matching the filters, newest first (``since <= created_at < until``)."""
        filters = self._history_filters(service, environment, status, since, until)
        return self.page(page, size=size, order_by=_HISTORY_ORDER, **filters)

    def history_after(self, *, after: str | None = None, size: int = 50,
                      service: Service | uuid.UUID | None = None, environment: Environment | int | None = None,
                      status: Statuses | None = None, since: datetime.datetime | None = None,
                      until: datetime.datetime | None = None) -> CursorPage[Deployment]:
        """Like :meth:`history`, paginated by keyset: pass the previous page's ``next_cursor`` as ``after``."""
        filters = self._history_filters(service, environment, status, since, until)
        return self.cursor_page(size=size, order_by=_HISTORY_ORDER, after=after, **filters)

    def _history_filters(self, service: Service | uuid.UUID | None, environment: Environment | int | None,
                         status: Statuses | None, since: datetime.datetime | None,
                         until: datetime.datetime | None) -> dict[str, object]:
        filters: dict[str, object] = {}
        if service is not None:
            filters["service"] = _key(service)
        if environment is not None:
            filters["environment"] = _key(environment)
        if status is not None:
            if not isinstance(status, str | list | tuple | set | frozenset):
                raise InvalidQueryError(f"deployment status is a status or a list of them (got {shown(status)})")
            statuses = [status] if isinstance(status, str) else list(status)
            unknown = [s for s in statuses if s not in DEPLOYMENT_STATUSES]
            if unknown:
                raise InvalidQueryError(
                    f"deployment status {shown(unknown[0])} is not one of {', '.join(DEPLOYMENT_STATUSES)}"
                )
            filters["status__in"] = statuses
        if since is not None:
            filters["created_at__gte"] = since
        if until is not None:
            filters["created_at__lt"] = until
        return filters

    def environments_reached(self, commit_sha: str) -> list[Environment]:
        """Environments where a release built from ``commit_sha`` (40 hex digits) was deployed successfully."""
        if not isinstance(commit_sha, str) or not _SHA.fullmatch(commit_sha.lower()):
            raise InvalidQueryError(f"commit {shown(commit_sha)} is not a full commit SHA (expected 40 hex digits)")

        def build() -> peewee.Query:
            reached = (Deployment.select(Deployment.environment)
                       .join(Release)
                       .where(Release.commit_sha == Param(0), Deployment.status == "success"))
            query: peewee.Query = Environment.select().where(Environment.id.in_(reached)).order_by(Environment.name)
            return query

        return self.prepared("environments_reached", build).rows(self.db, [commit_sha.lower()])

    def previous_successful(self, deployment: Deployment | uuid.UUID | str) -> Deployment | None:
        """The last successful deployment of the same service to the same environment before ``deployment``.

        "Before" is the history order (``created_at``, then id): the version to roll back to.
        """
        current = deployment if isinstance(deployment, Deployment) else self.get_or_none(deployment)
        if current is None:
            raise NotFoundError("Deployment", deployment)

        def build() -> peewee.Query:
            created, key = Param(2), Param(3)
            earlier = (Deployment.created_at < created) | ((Deployment.created_at == created) & (Deployment.id < key))
            query: peewee.Query = (
                self.select()
                .where(Deployment.service == Param(0), Deployment.environment == Param(1),
                       Deployment.status == "success", earlier)
                .order_by(*self._ordering(_HISTORY_ORDER)).limit(1))
            return query

        values = [self.param(Deployment.service, current.service_id),
                  self.param(Deployment.environment, current.environment_id),
                  self.param(Deployment.created_at, current.created_at), self.param(Deployment.id, current.id)]
        found: Deployment | None = self.prepared("previous_successful", build).first(self.db, values)
        return found

    def dora_metrics(self, start: datetime.datetime, end: datetime.datetime) -> DoraMetrics:
        """DORA metrics over production-tier environments for ``start <= t < end`` (two queries)."""
        return dora_metrics(self.db, start, end)


def _key(value: peewee.Model | object) -> object:
    return value._pk if isinstance(value, peewee.Model) else value  # type: ignore[attr-defined]
