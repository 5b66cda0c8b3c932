"""Hypothesis over the public API's inputs and the seed file format: a result or a typed OrmKitError, nothing else.

Every property draws values no caller should send (numbers past every bound, NaN, text with NUL bytes or lone
surrogates, instants that leave years 1-9999 once in UTC, nested lists, rows of the wrong table, bytes,
arbitrary objects) and calls the API with them. What comes back is a result or an :class:`OrmKitError`; an
error raised before any SQL leaves the caller's transaction usable (PostgreSQL aborts a transaction on any
failed statement), and a failed write or seed load leaves the database as it was. Examples are derandomized
(tests/conftest.py), so the suite is deterministic; ``HYPOTHESIS_PROFILE=explore`` draws new ones.
"""

from __future__ import annotations

import datetime
import math
import operator
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orm_kit import seeding
from orm_kit.bounds import check_count, check_seconds
from orm_kit.config import load_project
from orm_kit.db import parse_url
from orm_kit.errors import OrmKitError, SeedError
from orm_kit.models import MODELS, Deployment, Environment, Release, Service, Team
from orm_kit.platform import APP, SEED_REGISTRY
from orm_kit.repositories import (
    DeploymentRepository,
    EnvironmentRepository,
    ReleaseRepository,
    ServiceRepository,
    TeamRepository,
)
from orm_kit.validation import (
    commit_sha,
    email,
    field_type_error,
    length,
    matches,
    not_blank,
    number_range,
    one_of,
    semver,
    slug,
    url,
)

SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else 1  # conftest.py's profiles
DB_SETTINGS = settings(max_examples=40 * SCALE, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PURE_SETTINGS = settings(max_examples=300 * SCALE, deadline=None)

ZONES = st.sampled_from([None, datetime.UTC, datetime.timezone(datetime.timedelta(hours=14)),
                         datetime.timezone(-datetime.timedelta(hours=14)),
                         datetime.timezone(datetime.timedelta(hours=5, minutes=30))])
HOSTILE_TEXT = st.builds(operator.mul, st.sampled_from(["x", "9"]), st.just(5000)) | st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "1e400", "nan", "inf", "-1", "0", "http://[::1",
    "http://h:99999", "%", "_", "\\", "'; DROP TABLE team; --", "ÄBC", "__class__", "id__in", "-id", "--",
    str(uuid.UUID(int=1)), uuid.UUID(int=1).hex.upper(), "2026-01-01", "0001-01-01T00:00:00+14:00", "production",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([2**31, 2**63, -(2**63) - 1]),
    st.builds(pow, st.just(10), st.just(5000)),  # past the 4,300 digits int() and str() take
    st.floats(), st.decimals(), st.text(max_size=40), HOSTILE_TEXT, st.binary(max_size=8), st.uuids(),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), timezones=ZONES), st.dates(),
    st.timedeltas(), st.complex_numbers(max_magnitude=10), st.just(object()),
)
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6) | HOSTILE_TEXT, inner, max_size=3), max_leaves=6)
ROWS = st.sampled_from(["team", "environment", "service", "deployment"])


def _a_row(kind: str) -> peewee.Model:
    """An unsaved row of another table, as a caller might pass by mistake."""
    return {"team": Team(id=1, name="t"), "environment": Environment(id=1, name="E", slug="e", tier="other"),
            "service": Service(id=uuid.UUID(int=1), name="s"), "deployment": Deployment(id=uuid.UUID(int=2))}[kind]


VALUES = st.one_of(ANY, ROWS.map(_a_row))


def _typed_or_result(call: Callable[[], object]) -> OrmKitError | None:
    """Run ``call``; its error, if it is one of orm-kit's (anything else fails the test)."""
    try:
        call()
    except OrmKitError as error:
        assert len(str(error)) < 3000, str(error)[:300]
        return error
    return None


def _in_a_transaction(db: peewee.Database, call: Callable[[], object]) -> None:
    """``call`` in a transaction rolled back after; refused before any SQL, the transaction still works."""
    with db.atomic() as txn:
        error = _typed_or_result(call)
        if error is not None and not isinstance(error, peewee.DatabaseError):
            assert Team.select().count() >= 0  # on PostgreSQL, a statement that failed would abort this
        txn.rollback()


# --- no database ------------------------------------------------------------------------------------

RULES = [not_blank(), length(min=1, max=3), matches(r"[a-z]+", "letters"), one_of("a", 1, None), email(), url(),
         number_range(min=0, max=10), semver(), commit_sha(), slug()]
FIELDS = [f for model in MODELS for f in model._meta.sorted_fields]


@PURE_SETTINGS
@given(value=VALUES)
def test_every_validator_and_type_check_answers_any_value_with_none_or_a_short_message(value: Any) -> None:
    for rule in RULES:
        message = rule(value)
        assert message is None or (isinstance(message, str) and len(message) < 300)
    for field in FIELDS:
        message = field_type_error(field, value)
        assert message is None or (isinstance(message, str) and len(message) < 300)


@PURE_SETTINGS
@given(model=st.sampled_from(MODELS), data=st.dictionaries(st.text(max_size=12) | st.sampled_from(
    ["name", "id", "owner", "tier", "started_at", "finished_at", "duration_seconds", "version", "status",
     "service", "environment", "email", "repository_url", "commit_sha"]), VALUES, max_size=6), partial=st.booleans())
def test_check_data_answers_any_row_with_a_dict_of_messages(model: Any, data: dict[str, Any], partial: bool) -> None:
    errors = model.check_data(data, partial=partial)
    assert isinstance(errors, dict) and all(isinstance(m, str) for ms in errors.values() for m in ms)


@PURE_SETTINGS
@given(text=st.text(max_size=60) | HOSTILE_TEXT | st.builds(
    lambda scheme, rest: scheme + rest, st.sampled_from(["sqlite://", "sqlite:///", "postgresql://", "postgres://",
                                                         "postgresql+pool://", "cockroachdb://", "mysql://", ""]),
    st.text(max_size=40) | HOSTILE_TEXT))
def test_any_database_url_is_parsed_or_a_configuration_error(text: str) -> None:
    _typed_or_result(lambda: parse_url(text))


@PURE_SETTINGS
@given(value=VALUES, zero=st.booleans())
def test_any_duration_or_count_is_accepted_within_bounds_or_refused(value: Any, zero: bool) -> None:
    seconds = _typed_or_result(lambda: check_seconds(value, "a timeout", zero="no limit" if zero else None))
    if seconds is None:
        assert type(value) is int or (type(value) is float and math.isfinite(value))
    _typed_or_result(lambda: check_count(value, "retries", low=0, high=1000))


@settings(max_examples=60 * SCALE, deadline=None)
@given(body=st.text(max_size=200) | st.builds(
    lambda key, value: f"[tool.orm-kit]\n{key} = {value}\n",
    st.sampled_from(["app", "models", "migrations", "seeds", "seed_registry", "depends_on", "apps", "x"]),
    st.sampled_from(['"x"', "5", "[1, 2]", "{a = 1}", '"\\u0000"', "9" * 5000, "[" * 300 + "]" * 300, "true",
                     '"../../etc"', '"os:path"', "1979-05-27T07:32:00Z"])))
def test_any_pyproject_is_a_project_or_a_configuration_error(body: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pyproject.toml"
        path.write_text(body, errors="surrogatepass")
        _typed_or_result(lambda: load_project(APP, pyproject=path))


# --- repositories and writes, on both databases --------------------------------------------------------

REPOSITORIES = [TeamRepository, ServiceRepository, DeploymentRepository, EnvironmentRepository, ReleaseRepository]
FILTER_KEYS = st.sampled_from(["name", "name__contains", "name__startswith", "id", "id__in", "id__lt", "owner",
                               "tier__in", "created_at__gte", "created_at__lt", "status", "status__not_in",
                               "service", "environment", "display_name__isnull", "slug__contains"]) | st.text(
    max_size=12)


@st.composite
def repository_calls(draw: st.DrawFn) -> tuple[type[Any], str, dict[str, Any]]:
    kind = draw(st.sampled_from(REPOSITORIES))
    filters = draw(st.dictionaries(FILTER_KEYS, VALUES, max_size=2))
    order = draw(st.lists(st.sampled_from(["name", "-name", "id", "-created_at", "tier"]) | HOSTILE_TEXT, max_size=2)
                 | VALUES)
    method = draw(st.sampled_from(["find", "count", "exists", "find_one", "page", "cursor_page", "search", "get",
                                   "get_or_none", "find_unique", "create", "update_where", "delete_where"]))
    arguments: dict[str, Any] = {
        "find": {"order_by": order, "limit": draw(VALUES), "offset": draw(VALUES), **filters},
        "count": filters, "exists": filters, "find_one": filters,
        "page": {"number": draw(VALUES), "size": draw(VALUES), "order_by": order, **filters},
        "cursor_page": {"size": draw(VALUES), "after": draw(VALUES | st.text(max_size=60)), "order_by": order,
                        **filters},
        "search": {"text": draw(VALUES), "limit": draw(VALUES)},
        "get": {"key": draw(VALUES)}, "get_or_none": {"key": draw(VALUES)},
        "find_unique": {"field": draw(FILTER_KEYS), "value": draw(VALUES)},
        "create": draw(st.dictionaries(FILTER_KEYS, VALUES, max_size=3)),
        "update_where": {"changes": draw(st.dictionaries(FILTER_KEYS, VALUES, max_size=2)), **filters},
        "delete_where": filters,
    }[method]
    return kind, method, arguments


@pytest.fixture
def platform_rows(migrated: peewee.Database) -> peewee.Database:
    team = Team.create(name="owners")
    service = Service.create(name="billing", owner=team, tier="low")
    env = Environment.create(name="Production", slug="prod", tier="production")
    release = Release.create(service=service, version="1.0.0", commit_sha="a" * 40, ref="main")
    Deployment.create(service=service, environment=env, release=release, status="success")
    return migrated


def _counts() -> list[int]:
    return [model.select().count() for model in MODELS]


@DB_SETTINGS
@given(call=repository_calls())
def test_any_repository_call_is_a_result_or_a_typed_error(platform_rows: peewee.Database,
                                                          call: tuple[type[Any], str, dict[str, Any]]) -> None:
    kind, method, arguments = call
    repository = kind(platform_rows)
    before = _counts()
    _in_a_transaction(platform_rows, lambda: getattr(repository, method)(**arguments))
    event(method)
    assert _counts() == before


PLATFORM_CALLS: dict[str, Callable[[peewee.Database, Any, Any], object]] = {
    "deployed_where": lambda db, a, b: DeploymentRepository(db).deployed_where(service=a, environment=b),
    "history": lambda db, a, b: DeploymentRepository(db).history(page=a, size=b, status=a, since=b),
    "history_after": lambda db, a, b: DeploymentRepository(db).history_after(after=a, size=b, service=a,
                                                                             environment=b, until=a),
    "environments_reached": lambda db, a, b: DeploymentRepository(db).environments_reached(a),
    "previous_successful": lambda db, a, b: DeploymentRepository(db).previous_successful(a),
    "dora_metrics": lambda db, a, b: DeploymentRepository(db).dora_metrics(a, b),
    "find_by_name": lambda db, a, b: ServiceRepository(db).find_by_name(a),
    "find_with_deployments": lambda db, a, b: ServiceRepository(db).find_with_deployments(a),
    "owned_by_team": lambda db, a, b: ServiceRepository(db).owned_by_team(a, include_subteams=b),
    "dependency_graph": lambda db, a, b: ServiceRepository(db).dependency_graph(a, depth=b),
    "subteams": lambda db, a, b: TeamRepository(db).subteams(a),
    "find_by_slug": lambda db, a, b: EnvironmentRepository(db).find_by_slug(a),
    "find_by_version": lambda db, a, b: ReleaseRepository(db).find_by_version(a, b),
}


@DB_SETTINGS
@given(name=st.sampled_from(sorted(PLATFORM_CALLS)), first=VALUES, second=VALUES)
def test_any_argument_to_the_platforms_queries_is_a_result_or_a_typed_error(platform_rows: peewee.Database,
                                                                           name: str, first: Any,
                                                                           second: Any) -> None:
    _in_a_transaction(platform_rows, lambda: PLATFORM_CALLS[name](platform_rows, first, second))


@DB_SETTINGS
@given(model=st.sampled_from(MODELS), values=st.dictionaries(st.text(max_size=10) | st.sampled_from(
    ["name", "owner", "tier", "service", "environment", "started_at", "finished_at", "duration_seconds",
     "version", "commit_sha", "ref", "status", "slug", "id", "parent", "email"]), VALUES, max_size=5),
    path=st.sampled_from(["create", "insert_many", "update"]))
def test_any_write_through_a_model_is_stored_or_a_typed_error_and_a_failed_one_writes_nothing(
        platform_rows: peewee.Database, model: Any, values: dict[str, Any], path: str) -> None:
    fields = model._meta.fields
    known = {k: v for k, v in values.items() if k in fields}  # peewee's own TypeError for unknown names is fine
    before = _counts()
    with platform_rows.atomic() as txn:
        write = {"create": lambda: model.create(**known),
                 "insert_many": lambda: model.insert_many([known]).execute(),
                 "update": lambda: model.update(**known).execute() if known else None}[path]
        error = _typed_or_result(write)
        if error is not None and not isinstance(error, peewee.DatabaseError):
            assert _counts() == before  # refused before any SQL: nothing written
        txn.rollback()
    assert _counts() == before


# --- the seed file format ------------------------------------------------------------------------------

SEED_FIELDS = st.sampled_from(["name", "owner", "tier", "parent", "email", "display_name", "slug", "key",
                               "service", "environment", "release", "status", "version", "commit_sha", "ref",
                               "started_at", "finished_at", "duration_seconds", "created_at", "opened_at",
                               "lifecycle", "id", "severity", "title", "caused_by", "rollback_of", "depends_on"])
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([10**40, 2**31, -(2**63) - 1]) | st.floats()
    | st.text(max_size=20) | HOSTILE_TEXT.filter(lambda t: "\ud800" not in t)
    | st.datetimes(min_value=datetime.datetime(1, 1, 1), timezones=ZONES) | st.dates() | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=2),
    max_leaves=5)
SEED_TABLES = st.sampled_from(["team", "environment", "service", "release", "deployment", "incident",
                               "service_dependency", "api", "nope"])


@st.composite
def seed_documents(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:  # now and then, text that is not a well-formed document at all
        return draw(st.text(max_size=200) | st.sampled_from(["a: [", "- &a [*a]", "team: !!python/object:os.system",
                                                             "team:\n  - name: &x x\n    x: *y", "\t- x", "%YAML 9"]))
    document = {
        draw(SEED_TABLES): draw(st.lists(st.dictionaries(SEED_FIELDS, YAML_VALUES, max_size=5) | YAML_VALUES,
                                         max_size=3) | YAML_VALUES)
        for _ in range(draw(st.integers(1, 3)))
    }
    document.setdefault("team", [{"name": "owners"}])
    return yaml.safe_dump(document, allow_unicode=True)


VALID_SEED: dict[str, list[dict[str, Any]]] = {
    "team": [{"name": "owners"}, {"name": "payments", "parent": "owners", "email": "pay@example.com"}],
    "environment": [{"name": "Production", "slug": "prod", "tier": "production"}],
    "service": [{"name": "ledger", "owner": "payments", "tier": "high", "repository_url": "https://git.example.com/l"}],
    "release": [{"service": "ledger", "version": "1.0.0", "commit_sha": "a" * 40, "ref": "main",
                 "committed_at": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)}],
    "deployment": [{"key": "ledger/prod/1", "service": "ledger", "environment": "prod", "release": "1.0.0",
                    "status": "success", "started_at": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
                    "finished_at": datetime.datetime(2026, 1, 2, 0, 5, tzinfo=datetime.UTC)}],
    "incident": [{"service": "ledger", "environment": "prod", "severity": "sev2", "title": "slow",
                  "caused_by": "ledger/prod/1", "opened_at": datetime.datetime(2026, 1, 3, tzinfo=datetime.UTC)}],
}


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """A valid seed set with one or two values replaced: drawn values that get as far as the database."""
    document = {table: [dict(row) for row in rows] for table, rows in VALID_SEED.items()}
    for _ in range(draw(st.integers(1, 2))):
        table = draw(st.sampled_from(sorted(document)))
        row = document[table][draw(st.integers(0, len(document[table]) - 1))]
        row[draw(st.sampled_from(sorted(row)) | SEED_FIELDS)] = draw(YAML_VALUES)
    return yaml.safe_dump(document, allow_unicode=True)


@DB_SETTINGS
@given(document=mutated_documents() | seed_documents())
def test_any_seed_file_loads_or_names_its_problems_and_writes_nothing(platform_rows: peewee.Database,
                                                                      document: str) -> None:
    before = _counts()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "drawn.yaml").write_text(document)
        error = _typed_or_result(lambda: seeding.load(platform_rows, SEED_REGISTRY, Path(folder)))
    event("loaded" if error is None else type(error).__name__)
    if error is not None:
        assert isinstance(error, SeedError), repr(error)[:300]
        assert _counts() == before
        for problem in getattr(error, "problems", [error]):
            assert problem.path is not None and problem.path.endswith("drawn.yaml"), str(problem)[:300]


def test_the_suite_draws_the_same_examples_on_every_run() -> None:
    """conftest.py loads the derandomized "ci" profile unless HYPOTHESIS_PROFILE names another."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert settings.default.derandomize and settings.default.database is None


@pytest.fixture
def both_databases(postgres_url: str, tmp_path: Path) -> Any:
    """A migrated SQLite file and the migrated PostgreSQL test database, side by side."""
    from orm_kit.db import open_database
    from orm_kit.platform import migrate_up

    from conftest import reset_postgres

    reset_postgres(postgres_url)
    databases = [open_database(f"sqlite:///{tmp_path / 'side.db'}"), open_database(postgres_url)]
    for db in databases:
        with db.bind_ctx(MODELS):
            migrate_up(db)
    yield databases
    for db in databases:
        db.close()


def _outcome(db: peewee.Database, folder: Path) -> object:
    with db.bind_ctx(MODELS):
        error = _typed_or_result(lambda: seeding.load(db, SEED_REGISTRY, folder))
    if error is None:
        return "loaded"
    return [(p.line, p.table, p.field, p.reason) for p in getattr(error, "problems", [error])]


@pytest.mark.postgres
@settings(max_examples=25 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=mutated_documents())
def test_a_seed_file_loads_or_fails_alike_on_sqlite_and_postgresql(both_databases: list[peewee.Database],
                                                                   document: str) -> None:
    """The same problems, with the same file, line, table, field and words, on both databases."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "drawn.yaml").write_text(document)
        sqlite, postgres = (_outcome(db, Path(folder)) for db in both_databases)
    event("loaded" if sqlite == "loaded" else "refused")
    assert sqlite == postgres
