"""The platform's synthetic deployment history for load tests: N deployments with releases and incidents.

    from orm_kit import connect, migrate_up
    from orm_kit.synthetic import generate, remove_generated
    db = connect("sqlite:///load.db")
    migrate_up(db)
    result = generate(db, deployments=1_000_000, random_seed=7, progress=lambda done, total: None)
    result.releases, result.incidents          # what came with them
    remove_generated(db, 7)                    # and back: exactly the rows generate(..., random_seed=7) made

The same ``random_seed`` gives the same rows (ids included) on an empty database; another seed gives
other rows, under other service names, so several histories can live side by side. The world it
deploys into is its own: team ``synthetic``, environments ``synth-dev``, ``synth-staging``,
``synth-prod`` (shared by every seed; an existing row of that name is used, never taken over) and
``services`` services named ``synth-s<seed>-NNN``.

What a run generated is recorded (:mod:`orm_kit.seeding.generated`): its services by id, with how many
releases, deployments and incidents hang from them, and the world rows it created. ``remove_generated``
removes exactly that, never by name: an application's ``synth-s7-billing`` is not synthetic because
of its name. It refuses, changing nothing, when a row the run did not write refers to one it did (a
deployment an application added to a synthetic service, an incident caused by a synthetic deployment).

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

from orm_kit.bulk import DEFAULT_MAX_ROWS, BulkWriter, larger_cache, next_id, rows_per_chunk, sync_id_sequence
from orm_kit.dialect import is_postgres
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
from orm_kit.seeding.generated import GeneratedBook

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

GENERATOR = "synthetic"  # how the bookkeeping names this generator
_WORLD = "*world*"       # the bookkeeping's run for the shared world rows a run created (never a random seed)
MAX_RANDOM_SEED = 2**63 - 1
MAX_DEPLOYMENTS = 10**9
MAX_SERVICES = 100_000
MAX_DAYS = 36_500        # a century from 2026: every time stays a valid timestamp
_HANGING = ((Release, "releases"), (Deployment, "deployments"), (Incident, "incidents"))
_PLATFORM = frozenset((Team, Environment, Service, Release, Deployment, Incident))


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


def _check_arguments(deployments: int, random_seed: int, services: int, days: int) -> None:
    bounds = (("deployments", deployments, 0, MAX_DEPLOYMENTS), ("random_seed", random_seed, 0, MAX_RANDOM_SEED),
              ("services", services, 1, MAX_SERVICES), ("days", days, 1, MAX_DAYS))
    for name, value, low, high in bounds:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            shown = str(value) if isinstance(value, int) and abs(value) < 10**30 else type(value).__name__
            raise SeedError(f"cannot generate a synthetic history with {name}={shown} (expected a whole number from "
                            f"{low:,} to {high:,})")


def generate(db: peewee.Database, *, deployments: int, random_seed: int = 0, services: int = 20,
             days: int = 90, validate: bool = True, max_rows: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> GenerateResult:
    """Insert ``deployments`` synthetic deployments (with releases and incidents) in one transaction, and record
    what was generated so that :func:`remove_generated` can take back exactly that."""
    _check_arguments(deployments, random_seed, services, days)
    check_ready(db, SEED_REGISTRY)
    with larger_cache(db), db.atomic():
        book = GeneratedBook(db)
        book.create()
        if book.find(GENERATOR, str(random_seed)) is not None:
            raise SeedError(f"synthetic history for random seed {random_seed} is already loaded; use another "
                            "--random-seed, or remove it first (orm-kit seed remove-generated "
                            f"{random_seed})")
        names = [_service_name(random_seed, n) for n in range(1, services + 1)]
        taken = [str(row[0]) for chunk in _chunks(db, names)
                 for row in Service.select(Service.name).where(Service.name.in_(chunk)).tuples().iterator()]
        if taken:
            raise SeedError(f"service {taken[0]!r} already exists, and orm-kit did not generate it for random seed "
                            f"{random_seed}: the synthetic history would need its name; use another --random-seed")
        tracks, env_ids, created = _world(db, random_seed, services)
        rng = random.Random(random_seed)  # noqa: S311 - reproducible test data, not secrets
        history = _history(rng, tracks, env_ids, deployments, days, next_id(db, Release))
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
        result = GenerateResult(random_seed, services, writer.written(Deployment), writer.written(Release),
                                writer.written(Incident))
        book.record(GENERATOR, str(random_seed), {"service": [t.service_id.hex for t in tracks]},
                    counts={kind: getattr(result, kind) for _, kind in _HANGING})
        if created:
            if book.find(GENERATOR, _WORLD) is None:
                book.record(GENERATOR, _WORLD, created)
            else:
                book.add_rows(GENERATOR, _WORLD, created)
    return result


def synthetic_rows(db: peewee.Database, *, deployments: int, random_seed: int = 0, services: int = 20,
                   days: int = 90) -> Iterator[tuple[type[Any], tuple[Any, ...]]]:
    """The rows :func:`generate` writes, parents first: ``(Release, row)``, ``(Deployment, row)``, ``(Incident, row)``.

    Each row gives ``RELEASE_FIELDS``, ``DEPLOYMENT_FIELDS`` or ``INCIDENT_FIELDS`` in order. Calling it
    creates the world (team, environments, services) and takes release ids from :func:`~orm_kit.bulk.next_id`,
    so call it inside the transaction that writes the rows, and :func:`~orm_kit.bulk.sync_id_sequence`
    for ``Release`` after them. For other writers of the same history (``bench/bench_seed.py``).
    """
    _check_arguments(deployments, random_seed, services, days)
    tracks, env_ids, _ = _world(db, random_seed, services)
    rng = random.Random(random_seed)  # noqa: S311 - reproducible test data, not secrets
    return _history(rng, tracks, env_ids, deployments, days, next_id(db, Release))


def remove_generated(db: peewee.Database, random_seed: int) -> GenerateResult:
    """Delete the history :func:`generate` recorded for ``random_seed``, and the world rows it created once no
    recorded history uses them; refuse, changing nothing, when other rows refer to what it generated."""
    _check_arguments(0, random_seed, 1, 1)
    check_ready(db, SEED_REGISTRY)
    book = GeneratedBook(db)
    with db.atomic():
        run = book.find(GENERATOR, str(random_seed))
        if run is None:
            raise SeedError(_nothing_generated(db, random_seed))
        services = _recorded_services(db, book, str(random_seed))
        _refuse_foreign_references(db, random_seed, services, run.counts)
        counts = GenerateResult(random_seed, Service.select().where(Service.id.in_(services)).count(),
                                *(model.select().where(model.service.in_(services)).count()
                                  for model in (Deployment, Release, Incident)))
        # The schema cascades a service's releases, deployments and incidents; nothing else refers to them (checked).
        Service.delete().where(Service.id.in_(services)).execute()
        book.forget(GENERATOR, str(random_seed))
        if not [r for r in book.runs_of(GENERATOR) if r != _WORLD]:
            _remove_world(db, book)
    return counts


def _service_name(random_seed: int, n: int) -> str:
    return f"synth-s{random_seed}-{n:03d}"


def _chunks(db: peewee.Database, values: list[Any]) -> Iterator[list[Any]]:
    size = rows_per_chunk(db, 1)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _recorded_services(db: peewee.Database, book: GeneratedBook, run: str) -> peewee.SelectQuery:
    """The ids of the services run ``run`` generated, as a subquery (no list of parameters to outgrow a limit)."""
    rows = book.rows
    # Recorded as UUIDField stores them (32 hex digits); PostgreSQL's uuid column reads that text as a uuid.
    key = rows.row_key.cast("uuid") if is_postgres(db) else rows.row_key
    return rows.select(key).where(rows.generator == GENERATOR, rows.run == run, rows.table_name == "service")


def _nothing_generated(db: peewee.Database, random_seed: int) -> str:
    prefix = _service_name(random_seed, 0)[:-3]
    named = Service.select().where(Service.name.startswith(prefix)).count()
    message = f"no synthetic history for random seed {random_seed} was generated in this database (nothing to remove"
    if named:
        message += (f"; the {named} service(s) named {prefix}* were not generated by orm-kit, or were generated "
                    "before it recorded what it generates, so they are left alone: delete them by hand if they are "
                    "yours to delete")
    return message + ")"


def _referrers(db: peewee.Database, model: type[peewee.Model]) -> list[peewee.ForeignKeyField]:
    """Every foreign key that points at ``model`` from a table ``db`` has (other apps' models included), once per
    column: several model classes may describe one table (a migration's frozen copy), the platform's wins."""
    tables = set(db.get_tables())
    found: dict[tuple[str, str], peewee.ForeignKeyField] = {}
    for fk in model._meta.backrefs:
        where = (fk.model._meta.table_name, fk.column_name)
        if where[0] in tables and (where not in found or fk.model in _PLATFORM):
            found[where] = fk
    return list(found.values())


def _refuse_foreign_references(db: peewee.Database, random_seed: int, services: peewee.SelectQuery,
                               counts: dict[str, int]) -> None:
    """Removing the services must delete nothing but what the run generated: no row it did not write may refer to
    them, or to the releases, deployments and incidents hanging from them."""
    ours = {model: kind for model, kind in _HANGING}

    def refuse(count: int, fk: peewee.ForeignKeyField, what: str) -> None:
        table = fk.model._meta.table_name
        raise SeedError(f"cannot remove the synthetic history of random seed {random_seed}: {count} {table} row(s) "
                        f"it did not generate refer to {what} ({table}.{fk.name}); nothing was removed: delete or "
                        "change those rows first")

    for fk in _referrers(db, Service):
        found = fk.model.select().where(fk.in_(services)).count()
        expected = counts.get(ours[fk.model], 0) if fk.model in ours and fk.name == "service" else 0
        if found > expected:
            refuse(found - expected, fk, "its services")
    for target, kind in _HANGING:
        generated = target.select(target._meta.primary_key).where(target.service.in_(services))
        for fk in _referrers(db, target):
            query = fk.model.select().where(fk.in_(generated))
            if fk.model in ours:  # a row of the same history may refer to it (a rollback, a cause)
                query = query.where(fk.model.service.not_in(services))
            found = query.count()
            if found:
                refuse(found, fk, f"its {kind}")


def _remove_world(db: peewee.Database, book: GeneratedBook) -> None:
    """The world rows generate() created, once no history uses them and no other row refers to them."""
    world = book.find(GENERATOR, _WORLD)
    if world is None:
        return
    for model in (Environment, Team):
        key = model._meta.fields["id"]
        for value in world.rows.get(model._meta.table_name, []):
            row_id = key.python_value(value)
            if not any(fk.model.select().where(fk == row_id).exists() for fk in _referrers(db, model)):
                model.delete().where(key == row_id).execute()
    book.forget(GENERATOR, _WORLD)


def _world(db: peewee.Database, random_seed: int, count: int,
           ) -> tuple[list[_Track], list[int], dict[str, list[object]]]:
    """The team, environments and services the history deploys into (created through the models), and the world
    rows created here rather than found (table -> ids)."""
    rng = random.Random(f"world-{random_seed}")  # noqa: S311 - reproducible test data, not secrets
    created: dict[str, list[object]] = {}
    team = Team.get_or_none(Team.name == "synthetic")
    if team is None:
        team = Team.create(name="synthetic", display_name="Synthetic load", created_at=BASE_TIME)
        created["team"] = [team.id]
    env_ids = []
    for slug, tier in ENVIRONMENTS:
        env = Environment.get_or_none(Environment.slug == slug)
        if env is None:
            env = Environment.create(slug=slug, name=f"Synthetic {tier}", tier=tier, region="synthetic-1")
            created.setdefault("environment", []).append(env.id)
        env_ids.append(env.id)
    tracks = []
    for n in range(1, count + 1):
        service_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        Service.insert(id=service_id, name=_service_name(random_seed, n), owner=team,
                       tier=rng.choice(("critical", "high", "medium", "low")), lifecycle="production",
                       description="synthetic load-test service", created_at=BASE_TIME, updated_at=BASE_TIME,
                       ).execute()
        tracks.append(_Track(service_id))
    return tracks, env_ids, created


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
