"""The platform's synthetic deployment history for load tests: N deployments with releases and incidents.

    from orm_kit import connect, migrate_up
    from orm_kit.synthetic import generate, remove_generated
    db = connect("sqlite:///load.db")
    migrate_up(db)
    result = generate(db, deployments=1_000_000, random_seed=7, progress=lambda done, total: None)
    result.releases, result.incidents          # what came with them
    remove_generated(db, 7)                    # and back: the schema cascades from the services

The same ``random_seed`` gives the same rows (ids included) on an empty database; another seed gives
other rows, under other service names, so several histories can live side by side. The world it
deploys into is its own: team ``synthetic``, environments ``synth-dev``, ``synth-staging``,
``synth-prod`` (shared by every seed) and ``services`` services named ``synth-s<seed>-NNN``.

Rows are produced by a generator and written by :class:`~orm_kit.bulk.BulkWriter` in chunks that fit
the driver's parameter limit, so memory stays flat whatever N is. Every row is validated by its model
(``validate=False`` skips it; ``bench/bench_seed.py`` measures the difference). Everything happens in
one transaction: a failure leaves the database as it was.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import peewee

from orm_kit.bulk import DEFAULT_MAX_ROWS, BulkWriter, larger_cache, next_id, sync_id_sequence
from orm_kit.errors import SeedError
from orm_kit.models import (
    FINISHED_STATUSES,
    SEVERITIES,
    Deployment,
    Environment,
    EnvironmentTier,
    Incident,
    Release,
    Service,
    Team,
)
from orm_kit.platform import SEED_REGISTRY
from orm_kit.seeding import check_ready

__all__ = ["DEPLOYMENT_FIELDS", "INCIDENT_FIELDS", "RELEASE_FIELDS", "GenerateResult", "generate", "remove_generated",
           "synthetic_rows"]

UTC = datetime.UTC
BASE_TIME = datetime.datetime(2026, 1, 5, tzinfo=UTC)  # a fixed start: the same seed gives the same times
ENVIRONMENTS: tuple[tuple[str, EnvironmentTier], ...] = (
    ("synth-dev", "development"), ("synth-staging", "staging"), ("synth-prod", "production"))
ENV_WEIGHTS = (45, 30, 25)
STATUSES = FINISHED_STATUSES
STATUS_WEIGHTS = (88, 8, 3, 1)
TRIGGERS = ("ci-bot", "alice", "bob", "chen", "dana", "emeka", "farah")

RELEASE_FIELDS = ["id", "service", "version", "commit_sha", "ref", "committed_at", "created_at"]
DEPLOYMENT_FIELDS = ["id", "service", "environment", "release", "rollback_of", "status", "triggered_by",
                     "lock_version", "created_at", "started_at", "finished_at"]
INCIDENT_FIELDS = ["service", "environment", "caused_by", "severity", "title", "opened_at", "resolved_at"]


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` inserted."""

    random_seed: int
    services: int
    deployments: int
    releases: int
    incidents: int

    @property
    def rows(self) -> int:
        """Every row written (deployments, releases and incidents)."""
        return self.deployments + self.releases + self.incidents


@dataclass
class _Track:
    """Per service: its latest release and what production last ran successfully."""

    service_id: uuid.UUID
    release_id: int = 0
    major: int = 1
    minor: int = 0
    patch: int = 0
    prod_release: int = 0
    prev_prod_release: int = 0


def generate(db: peewee.Database, *, deployments: int, random_seed: int = 0, services: int = 20,
             days: int = 90, validate: bool = True, max_rows: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> GenerateResult:
    """Insert ``deployments`` synthetic deployments (with releases and incidents) in one transaction."""
    if deployments < 0 or services < 1 or days < 1 or random_seed < 0:
        raise SeedError(f"cannot generate {deployments} deployments over {days} days for {services} services "
                        f"with random seed {random_seed} (expected N >= 0, at least one service and day, seed >= 0)")
    check_ready(db, SEED_REGISTRY)
    prefix = f"synth-s{random_seed}-"
    with larger_cache(db), db.atomic():
        if Service.select().where(Service.name.startswith(prefix)).exists():
            raise SeedError(f"synthetic history for random seed {random_seed} is already loaded (services "
                            f"{prefix}*); use another --random-seed, or generate into a fresh database")
        history = synthetic_rows(db, deployments=deployments, random_seed=random_seed, services=services, days=days)
        writer = BulkWriter(db, validate=validate, max_rows=max_rows or DEFAULT_MAX_ROWS)
        writer.table(Release, RELEASE_FIELDS)
        writer.table(Deployment, DEPLOYMENT_FIELDS)
        writer.table(Incident, INCIDENT_FIELDS)
        if progress is not None:
            def report(model: type[Any], written: int) -> None:
                if model is Deployment:
                    progress(written, deployments)
            writer.on_flush = report
        for model, row in history:
            writer.add(model, row)
        writer.flush()
        sync_id_sequence(db, Release)
    return GenerateResult(random_seed, services, writer.written(Deployment), writer.written(Release),
                          writer.written(Incident))


def synthetic_rows(db: peewee.Database, *, deployments: int, random_seed: int = 0, services: int = 20,
                   days: int = 90) -> Iterator[tuple[type[Any], tuple[Any, ...]]]:
    """The rows :func:`generate` writes, parents first: ``(Release, row)``, ``(Deployment, row)``, ``(Incident, row)``.

    Each row gives ``RELEASE_FIELDS``, ``DEPLOYMENT_FIELDS`` or ``INCIDENT_FIELDS`` in order. Calling it
    creates the world (team, environments, services) and takes release ids from :func:`~orm_kit.bulk.next_id`,
    so call it inside the transaction that writes the rows, and :func:`~orm_kit.bulk.sync_id_sequence`
    for ``Release`` after them. For other writers of the same history (``bench/bench_seed.py``).
    """
    tracks, env_ids = _world(db, random_seed, services)
    rng = random.Random(random_seed)  # noqa: S311 - reproducible test data, not secrets
    return _history(rng, tracks, env_ids, deployments, days, next_id(db, Release))


def remove_generated(db: peewee.Database, random_seed: int) -> GenerateResult:
    """Delete the history :func:`generate` made for ``random_seed`` (and its world, once no seed uses it)."""
    services = Service.select(Service.id).where(Service.name.startswith(f"synth-s{random_seed}-"))
    with db.atomic():
        counts = GenerateResult(
            random_seed, services.count(),
            Deployment.select().where(Deployment.service.in_(services)).count(),
            Release.select().where(Release.service.in_(services)).count(),
            Incident.select().where(Incident.service.in_(services)).count())
        if not counts.services:
            raise SeedError(f"no synthetic history for random seed {random_seed} is loaded "
                            "(nothing to remove; check the seed)")
        # The schema cascades a service's releases, deployments and incidents.
        Service.delete().where(Service.id.in_(services)).execute()
        synthetic = Environment.select(Environment.id).where(Environment.slug.in_([s for s, _ in ENVIRONMENTS]))
        if not Deployment.select().where(Deployment.environment.in_(synthetic)).exists() and \
                not Incident.select().where(Incident.environment.in_(synthetic)).exists():
            Environment.delete().where(Environment.id.in_(synthetic)).execute()
        team = Team.get_or_none(Team.name == "synthetic")
        if team is not None and not team.services.exists() and not team.apis.exists():
            team.delete_instance()
    return counts


def _world(db: peewee.Database, random_seed: int, count: int) -> tuple[list[_Track], list[int]]:
    """The team, environments and services the history deploys into (created through the models)."""
    rng = random.Random(f"world-{random_seed}")  # noqa: S311 - reproducible test data, not secrets
    team = Team.get_or_none(Team.name == "synthetic")
    if team is None:
        team = Team.create(name="synthetic", display_name="Synthetic load", created_at=BASE_TIME)
    env_ids = []
    for slug, tier in ENVIRONMENTS:
        env = Environment.get_or_none(Environment.slug == slug)
        if env is None:
            env = Environment.create(slug=slug, name=f"Synthetic {tier}", tier=tier, region="synthetic-1")
        env_ids.append(env.id)
    tracks = []
    for n in range(1, count + 1):
        service_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        Service.insert(id=service_id, name=f"synth-s{random_seed}-{n:03d}", owner=team,
                       tier=rng.choice(("critical", "high", "medium", "low")), lifecycle="production",
                       description="synthetic load-test service", created_at=BASE_TIME, updated_at=BASE_TIME,
                       ).execute()
        tracks.append(_Track(service_id))
    return tracks, env_ids


def _history(rng: random.Random, tracks: list[_Track], env_ids: list[int], total: int, days: int,
             next_release: int) -> Iterator[tuple[type[Any], tuple[Any, ...]]]:
    """Rows in insertion order: a release before the deployments of it, a deployment before its incident."""
    step = days * 86400 / max(total, 1)  # mean seconds between deployments
    now = BASE_TIME
    made = 0
    prod = env_ids[-1]
    while made < total:
        now += datetime.timedelta(seconds=rng.expovariate(1 / step))
        track = rng.choice(tracks)
        if track.release_id == 0 or rng.random() < 0.2:
            track.patch += 1
            if rng.random() < 0.15:
                track.minor, track.patch = track.minor + 1, 0
            committed = now - datetime.timedelta(minutes=rng.randrange(10, 600))
            track.release_id, next_release = next_release, next_release + 1
            yield Release, (track.release_id, track.service_id, f"{track.major}.{track.minor}.{track.patch}",
                            f"{rng.getrandbits(160):040x}", "main", committed,
                            committed + datetime.timedelta(minutes=rng.randrange(2, 30)))
        env = rng.choices(env_ids, ENV_WEIGHTS)[0]
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        deployment_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        started = now + datetime.timedelta(seconds=rng.randrange(5, 120))
        finished = started + datetime.timedelta(seconds=rng.randrange(30, 900))
        yield Deployment, (deployment_id, track.service_id, env, track.release_id, None, status,
                           rng.choice(TRIGGERS), 1, now, started, finished)
        made += 1
        if env != prod:
            continue
        if status == "success":
            track.prev_prod_release, track.prod_release = track.prod_release, track.release_id
        broke = (status == "success" and rng.random() < 0.04) or (status == "failed" and rng.random() < 0.3)
        if not broke:
            continue
        opened = finished + datetime.timedelta(minutes=rng.randrange(1, 60))
        yield Incident, (track.service_id, env, deployment_id, rng.choices(SEVERITIES, (5, 20, 40, 35))[0],
                         f"errors after deploying release {track.release_id}", opened,
                         opened + datetime.timedelta(minutes=rng.randrange(5, 240)))
        if status == "success" and track.prev_prod_release and made < total:
            # roll production back to the release it ran before
            rollback_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            start = opened + datetime.timedelta(minutes=rng.randrange(1, 15))
            yield Deployment, (rollback_id, track.service_id, env, track.prev_prod_release, deployment_id,
                               "success", "ci-bot", 1, start, start, start + datetime.timedelta(minutes=3))
            track.prod_release, track.prev_prod_release = track.prev_prod_release, 0
            made += 1
            now = max(now, start)
