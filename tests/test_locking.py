"""Optimistic locking on service and deployment: a stale copy is refused and changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable

import peewee
import pytest

from orm_kit.errors import ConflictError
from orm_kit.models import Deployment, Service
from orm_kit.repositories import DeploymentRepository, ServiceRepository

import factories
from counter import Counter, CounterRepository


def stored(svc: Service) -> tuple[str, int]:
    row = Service.get_by_id(svc.id)
    return row.description, row.lock_version


@pytest.mark.parametrize("via", ["model.save", "repository"])
def test_saving_a_stale_service_raises_and_changes_nothing(migrated: peewee.Database, via: str) -> None:
    repo = ServiceRepository(migrated)
    created = factories.service(name="checkout")
    first, second = repo.get(created.id), repo.get(created.id)
    save: Callable[[Service], object] = (lambda s: s.save()) if via == "model.save" else repo.save
    first.description = "first"
    save(first)
    assert stored(created) == ("first", 2) and first.lock_version == 2
    second.description = "second"
    read_at, dirty = second.updated_at, set(second.dirty_fields)
    with pytest.raises(ConflictError, match=r"Service .* was changed or deleted by someone else.*lock_version 1"):
        save(second)
    assert stored(created) == ("first", 2)
    assert (second.description, second.lock_version) == ("second", 1)  # the stale copy is left as it was
    assert (second.updated_at, set(second.dirty_fields)) == (read_at, dirty)  # not stamped, not more dirty
    fresh = repo.get(created.id)
    fresh.description = "third"
    save(fresh)
    assert stored(created) == ("third", 3)


def test_deployments_are_versioned_too(migrated: peewee.Database) -> None:
    repo = DeploymentRepository(migrated)
    deployment = factories.deployment(factories.service(), factories.environment(), status="running")
    a, b = repo.get(deployment.id), repo.get(deployment.id)
    repo.update(a, status="success")
    with pytest.raises(ConflictError, match="Deployment"):
        repo.update(b, status="failed")
    assert (Deployment.get_by_id(deployment.id).status, Deployment.get_by_id(deployment.id).lock_version) == (
        "success", 2)
    with pytest.raises(ConflictError):
        repo.delete(b)  # deleting a stale copy is refused as well
    assert repo.delete(a) is True


def test_conflicts_plus_successes_equal_attempts(migrated: peewee.Database) -> None:
    """Eight threads, twenty rounds: in each, all read the same version, then all try to write it.

    The barriers make every round's reads happen before any of its writes, and after all of the
    previous round's writes, so each round has exactly one winner and seven conflicts.
    """
    Counter.bind(migrated)
    migrated.create_tables([Counter])
    try:
        key = CounterRepository(migrated).create(value=0).id
        tally = {"conflicts": 0, "successes": 0}
        lock = threading.Lock()
        step = threading.Barrier(8, timeout=60)
        errors: list[BaseException] = []

        def run() -> None:
            repo = CounterRepository(migrated)
            try:
                for _ in range(20):
                    step.wait()  # the previous round's writes are all done
                    row = repo.get(key)
                    step.wait()  # every thread has read this round's version
                    try:
                        repo.update(row, value=row.value + 1)
                    except ConflictError:
                        outcome = "conflicts"
                    else:
                        outcome = "successes"
                    with lock:
                        tally[outcome] += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
                step.abort()
            finally:
                migrated.close()

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        row = CounterRepository(migrated).get(key)
        assert tally == {"conflicts": 140, "successes": 20}
        assert tally["conflicts"] + tally["successes"] == 160
        assert row.value == tally["successes"] and row.lock_version == 1 + tally["successes"]
    finally:
        Counter.bind(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("via", ["model.save", "repository"])
def test_a_copy_read_without_its_version_says_so(migrated: peewee.Database, via: str) -> None:
    created = factories.service(name="partial")
    copy = Service.select(Service.id, Service.name, Service.description).where(Service.id == created.id).get()
    copy.description = "changed"
    with pytest.raises(ConflictError, match=r"has no lock_version loaded \(got None\); select the lock_version column"):
        copy.save() if via == "model.save" else ServiceRepository(migrated).save(copy)
    assert stored(created) == ("", 1)
