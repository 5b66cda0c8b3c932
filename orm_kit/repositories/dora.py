"""DORA metrics for a period over production-tier environments, from two queries (each built once).

    metrics = dora_metrics(db, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    metrics.deployment_frequency      # successful production deployments per day
    metrics.lead_time                 # median finished_at - release.committed_at
    metrics.change_failure_rate       # share of those (successful) deployments with an incident or a rollback
    metrics.time_to_restore           # median incident resolved_at - opened_at

Time arithmetic is done here in Python, over the rows the two queries return, and nowhere in SQL:
``UTCDateTimeField`` is ``timestamptz`` on PostgreSQL but fixed-width UTC text on SQLite, so a
difference of two times would need per-backend SQL (``julianday()`` vs ``EXTRACT(EPOCH ...)``).
Comparisons are the same on both (the text sorts in time order), so the period filter stays in SQL.

Definitions (after the DORA research and GitLab's DORA API):

* deployments counted: status ``success`` in a ``production``-tier environment, ``finished_at`` in
  ``[start, end)``;
* deployment frequency: that count divided by the period's length in days;
* lead time for changes: the median of ``finished_at - release.committed_at`` over those deployments
  whose release has a commit time;
* change failure rate: those deployments that caused an incident (``incident.caused_by``) or were rolled
  back (another deployment's ``rollback_of``), over all of them -- that is, over the *successful*
  production deployments of the period, not over every deployment attempted. A failed or canceled
  deployment changed nothing in production, so it is not a change that could fail (DORA's and
  GitLab's reading); counting it in the denominator would make a flaky pipeline look safer;
* time to restore service: the median of ``resolved_at - opened_at`` over production-tier incidents
  opened in the period and resolved.
"""

from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass

import peewee

from orm_kit import dialect
from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError
from orm_kit.fields import as_utc, writer
from orm_kit.models import Deployment, Environment, Incident, Release
from orm_kit.query.prepared import Param, Prepared, cache_for

__all__ = ["DoraMetrics", "dora_metrics"]


@dataclass(frozen=True)
class DoraMetrics:
    """The four DORA metrics for ``start <= t < end`` (``None`` where there is nothing to measure)."""

    start: datetime.datetime
    end: datetime.datetime
    deployments: int
    deployment_frequency: float
    lead_time: datetime.timedelta | None
    failed_changes: int
    change_failure_rate: float | None
    restored_incidents: int
    time_to_restore: datetime.timedelta | None


def _median(durations: list[datetime.timedelta]) -> datetime.timedelta | None:
    if not durations:
        return None
    return datetime.timedelta(seconds=statistics.median(d.total_seconds() for d in durations))


def _period(start: datetime.datetime, end: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime.datetime):
            raise InvalidQueryError(f"DORA period {name} must be a datetime (got {shown(value)})")
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise InvalidQueryError(f"DORA period end {end.isoformat()} must be after start {start.isoformat()}")
    return start, end


def dora_metrics(db: peewee.Database, start: datetime.datetime, end: datetime.datetime) -> DoraMetrics:
    """The DORA metrics of production-tier environments for ``start <= t < end`` (see the module docstring)."""
    start, end = _period(start, end)
    statements = cache_for(dora_metrics, db)
    convert = writer(Deployment.finished_at, postgres=dialect.is_postgres(db)).apply
    period = [convert(start), convert(end)]
    deployments = 0
    failures = 0
    lead_times: list[datetime.timedelta] = []
    for finished_at, committed_at, was_failure in statements.get("changes", lambda: Prepared(_changes(), db)).rows(
            db, period):
        deployments += 1
        failures += 1 if int(was_failure) else 0
        if committed_at is not None:
            lead_times.append(finished_at - committed_at)
    restores = [resolved - opened for opened, resolved in
                statements.get("restores", lambda: Prepared(_restores(), db)).rows(db, period)]
    days = (end - start).total_seconds() / 86400
    return DoraMetrics(
        start=start,
        end=end,
        deployments=deployments,
        deployment_frequency=deployments / days,
        lead_time=_median(lead_times),
        failed_changes=failures,
        change_failure_rate=failures / deployments if deployments else None,
        restored_incidents=len(restores),
        time_to_restore=_median(restores),
    )


def _changes() -> peewee.Query:
    """Successful production deployments finished in the period: finish, commit time, whether the change failed."""
    incident = Incident.select(peewee.SQL("1")).where(Incident.caused_by == Deployment.id)
    rollback_alias = Deployment.alias("rollback")
    rollback = rollback_alias.select(peewee.SQL("1")).where(rollback_alias.rollback_of == Deployment.id)
    failed = peewee.Case(None, [(peewee.fn.EXISTS(incident) | peewee.fn.EXISTS(rollback), 1)], 0)
    query: peewee.Query = (
        Deployment.select(Deployment.finished_at, Release.committed_at, failed.alias("failed"))
        .join_from(Deployment, Environment)
        .join_from(Deployment, Release, peewee.JOIN.LEFT_OUTER)
        .where(Environment.tier == "production", Deployment.status == "success",
               Deployment.finished_at >= Param(0), Deployment.finished_at < Param(1))
        .tuples())
    return query


def _restores() -> peewee.Query:
    """Production incidents opened in the period and resolved: opened and resolved times."""
    query: peewee.Query = (
        Incident.select(Incident.opened_at, Incident.resolved_at)
        .join(Environment)
        .where(Environment.tier == "production", Incident.resolved_at.is_null(False),
               Incident.opened_at >= Param(0), Incident.opened_at < Param(1))
        .tuples())
    return query
