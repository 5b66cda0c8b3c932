"""Every number orm-kit takes from outside is bounded: a typed error (or exit 2) before anything reaches a database."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import peewee
import pytest
from click.testing import CliRunner

from orm_kit.bounds import MAX_WAIT_SECONDS
from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.errors import ConfigurationError, SeedError
from orm_kit.migrate import LockPolicy, Runner
from orm_kit.migrate.lock import migration_lock
from orm_kit.pool import PoolSettings
from orm_kit.replicas import Replica, open_replicated
from orm_kit.synthetic import generate, remove_generated
from orm_kit.transactions import RetryPolicy

HOSTILE_SECONDS = [float("nan"), float("inf"), -float("inf"), -1, 3_000_000, 1e300, 2**70, "30", None, True]


@pytest.mark.parametrize("given", ["3000000", "2147483.648", "1e10", "nan", "inf", "-1"])
def test_a_sqlite_url_timeout_sqlite_cannot_hold_is_refused_not_turned_into_never_wait(tmp_path: Path,
                                                                                      given: str) -> None:
    # SQLite keeps its busy timeout in a C int of milliseconds: 3,000,000 s used to become 0, "do not wait".
    with pytest.raises(ConfigurationError, match=r"has timeout=.*expected a number of seconds from 0 to 2,147,483.647"):
        open_database(f"sqlite:///{tmp_path / 'x.db'}?timeout={given}")


def test_the_longest_sqlite_timeout_is_kept_exactly(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.db'}?timeout=2147483.647")
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 2**31 - 1
    db.close()


@pytest.mark.parametrize("value", HOSTILE_SECONDS, ids=str)
@pytest.mark.parametrize("make", [
    lambda v: LockPolicy(lock_timeout=v), lambda v: LockPolicy(statement_timeout=v),
    lambda v: RetryPolicy(max_seconds=v), lambda v: RetryPolicy(base_delay=v), lambda v: RetryPolicy(max_delay=v),
    lambda v: PoolSettings(timeout=v), lambda v: PoolSettings(stale_timeout=v if v is not None else math.nan),
    lambda v: Replica(peewee.PostgresqlDatabase(None), "r", max_lag_seconds=v),
], ids=["lock_timeout", "statement_timeout", "max_seconds", "base_delay", "max_delay", "pool_timeout",
        "stale_timeout", "max_lag_seconds"])
def test_every_duration_setting_refuses_what_no_database_can_wait(make: Any, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="expected a number of seconds"):
        make(value)


@pytest.mark.parametrize("make", [
    lambda: LockPolicy(retries=10**9), lambda: LockPolicy(retries=-1), lambda: LockPolicy(retries=2.5),
    lambda: RetryPolicy(attempts=0), lambda: RetryPolicy(attempts=10**30), lambda: RetryPolicy(attempts=True),
    lambda: PoolSettings(max_connections=10**12),
    lambda: Replica(peewee.PostgresqlDatabase(None), "r", max_lag_bytes=2**64),
    lambda: Replica(peewee.PostgresqlDatabase(None), "r", max_lag_bytes=math.nan),
])
def test_every_count_setting_is_bounded(make: Any) -> None:
    # A billion lock retries built a list of a billion attempts before the first one ran.
    with pytest.raises(ConfigurationError, match="expected a whole number from"):
        make()


@pytest.mark.parametrize("option", ["max_lag_seconds=nan", "max_lag_seconds=1e999", "max_lag_bytes=1e3",
                                    "max_lag_bytes=99999999999999999999999"])
def test_a_replica_lag_bound_of_nan_is_refused_not_read_as_always_healthy(option: str) -> None:
    with pytest.raises(ConfigurationError, match="replica URL 'postgresql://a:\\*\\*\\*@r/db"):
        open_replicated("postgresql://a:secret@p/db", [f"postgresql://a:secret@r/db?{option}"], connect=False)


def test_a_migration_lock_timeout_past_the_bound_is_refused_before_waiting(db: peewee.Database,
                                                                           tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="the migration lock timeout is 3000000"):
        Runner(db, tmp_path, lock_timeout=3_000_000)
    with pytest.raises(ConfigurationError, match="the migration lock timeout is inf"), \
            migration_lock(db, float("inf")):
        pass
    runner = Runner(db, tmp_path, lock_timeout=MAX_WAIT_SECONDS)  # the longest is fine
    assert runner.up() == []


@pytest.mark.parametrize("arguments", [
    ["migrate", "--lock-timeout", "nan", "status"], ["migrate", "--lock-timeout", "1e400", "status"],
    ["migrate", "--lock-timeout", "3000000", "status"], ["migrate", "--statement-timeout", "-inf", "sql"],
    ["migrate", "--statement-lock-timeout", "0", "sql"], ["migrate", "--lock-retries", "99999999999999999999", "up"],
    ["migrate", "down", "--steps", "99999999999999999999"],
    ["seed", "generate", "--deployments", "99999999999999999999"], ["seed", "generate", "--days", "1000000"],
    ["seed", "generate", "--random-seed", str(2**64)], ["seed", "generate", "--services", "1000000000"],
    ["seed", "remove-generated", str(2**64)],
])
def test_cli_numbers_past_their_bounds_are_a_usage_error(tmp_path: Path, arguments: list[str]) -> None:
    result = CliRunner().invoke(main, ["--database", f"sqlite:///{tmp_path / 'x.db'}", *arguments])
    assert result.exit_code == 2, result.output
    assert "Error: Invalid value for" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OverflowError)


@pytest.mark.parametrize("arguments", [dict(days=10**6), dict(deployments=-1), dict(services=0),
                                       dict(random_seed=2**64), dict(random_seed=-1), dict(days=1.5)])
def test_generate_refuses_arguments_past_its_bounds_with_a_seed_error(migrated: peewee.Database,
                                                                      arguments: dict[str, Any]) -> None:
    # days=10**6 used to run until datetime overflowed (OverflowError) half-way through the history.
    options: dict[str, Any] = {"deployments": 10, **arguments}
    with pytest.raises(SeedError, match="cannot generate a synthetic history with"):
        generate(migrated, **options)
    with pytest.raises(SeedError, match="expected a whole number"):
        remove_generated(migrated, -1)
