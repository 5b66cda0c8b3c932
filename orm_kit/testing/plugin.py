"""orm-kit's pytest plugin: a migrated database per session on SQLite and PostgreSQL, each test rolled back.

Installed with orm-kit (a ``pytest11`` entry point); nothing to enable::

    def test_checkout_has_its_deployments(orm_kit_db, max_queries, no_n_plus_one):
        svc = ServiceRepository(orm_kit_db).create(name="checkout-api", tier="critical", owner=team)
        with max_queries(2):                       # fails past two queries, listing them
            ServiceRepository(orm_kit_db).find_with_deployments(svc.id)

Fixtures:

``orm_kit_db``
    The session's migrated database of this test's backend, with the models bound to it, inside a
    transaction rolled back when the test ends (:func:`orm_kit.transactions.sandbox`). The code under
    test's own transactions are savepoints; its ``on_commit`` hooks run when its outermost block ends
    well, as after a real COMMIT. Every test that uses it runs once per backend (ids ``[sqlite]``,
    ``[postgres]``).
``orm_kit_backend``
    ``"sqlite"`` or ``"postgres"``: the backend of this run of the test.
``on_commit_hooks``
    The ``on_commit`` hooks that "committed" in this test so far, in order.
``max_queries``, ``no_n_plus_one``, ``record_queries``
    :mod:`orm_kit.testing.queries`, on ``orm_kit_db`` when the test uses it (else every database).
``orm_kit_postgres_url``
    The test server's URL: ``--orm-kit-postgres-url``, else ``$ORM_KIT_TEST_POSTGRES_URL``, else a
    throwaway server started for the session (:mod:`orm_kit.testing.pgserver`). Never skipped: a
    server that cannot be had fails the tests that need it.
``orm_kit_postgres_direct_url``
    A direct connection to that server, for what a transaction pooler cannot do: creating, migrating
    and dropping the session's database. ``--orm-kit-postgres-direct-url``, else
    ``$ORM_KIT_TEST_POSTGRES_DIRECT_URL`` (unless ``--orm-kit-postgres-url`` was given), else
    ``orm_kit_postgres_url`` itself. With ``orm_kit_postgres_url`` through PgBouncer in transaction
    mode (``?pgbouncer=transaction``) and this set, the tests run through the pooler on a database
    migrated directly, as a deployment runs ``orm-kit migrate`` with ``ORM_KIT_DIRECT_DATABASE_URL``.
``orm_kit_schema``
    What the databases hold (:class:`~orm_kit.testing.SchemaSetup`): the ``orm_kit_models`` and
    ``orm_kit_migrations`` ini options, else the ``pytest_orm_kit_schema`` hook (orm-kit's platform
    answers last: its ten tables and shipped migrations). Override the fixture for anything else.

Options: ``--orm-kit-backends sqlite,postgres`` (or the ``orm_kit_backends`` ini option; default both),
``--orm-kit-postgres-url URL``, ``--orm-kit-postgres-direct-url URL``; the marker
``@pytest.mark.orm_kit_backends("postgres")`` keeps a test to some backends.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import peewee
import pytest

from orm_kit.db import redact_url
from orm_kit.errors import ConfigurationError, DatabaseUnavailableError, OrmKitError
from orm_kit.testing import hooks, pgserver, queries
from orm_kit.testing.databases import BACKENDS, SchemaSetup, SessionDatabases
from orm_kit.transactions import Sandbox, sandbox

__all__ = [
    "POSTGRES_DIRECT_URL_ENV",
    "POSTGRES_URL_ENV",
    "max_queries",
    "no_n_plus_one",
    "on_commit_hooks",
    "orm_kit_backend",
    "orm_kit_databases",
    "orm_kit_db",
    "orm_kit_postgres_direct_url",
    "orm_kit_postgres_url",
    "orm_kit_sandbox",
    "orm_kit_schema",
    "record_queries",
]

POSTGRES_URL_ENV = "ORM_KIT_TEST_POSTGRES_URL"
POSTGRES_DIRECT_URL_ENV = "ORM_KIT_TEST_POSTGRES_DIRECT_URL"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orm-kit", "orm-kit test databases")
    group.addoption("--orm-kit-backends", metavar="NAMES", default=None,
                    help="Comma-separated backends the database tests run on: sqlite,postgres "
                         "(default: the orm_kit_backends ini option, else both).")
    group.addoption("--orm-kit-postgres-url", metavar="URL", default=None,
                    help=f"PostgreSQL server for the tests (default: ${POSTGRES_URL_ENV}, else a throwaway "
                         "server started for the session); each session creates its own database there.")
    group.addoption("--orm-kit-postgres-direct-url", metavar="URL", default=None,
                    help=f"A direct connection to that server when --orm-kit-postgres-url goes through a transaction "
                         f"pooler: the session's database is created and migrated over it (default: "
                         f"${POSTGRES_DIRECT_URL_ENV}, unless --orm-kit-postgres-url is given).")
    parser.addini("orm_kit_backends", "Backends the database tests run on (default: sqlite postgres).",
                  type="args", default=list(BACKENDS))
    parser.addini("orm_kit_models", "The models of the test database, as module:attribute "
                  "(default: the pytest_orm_kit_schema hook).", default="")
    parser.addini("orm_kit_migrations", "Folder of the migrations that build the test database "
                  "(default: create the models' tables).", type="paths", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "orm_kit_backends(*names): run this test on these backends only "
                                       "(sqlite, postgres).")
    backends(config)  # a typo in the option fails the run before any test


def backends(config: pytest.Config) -> list[str]:
    """The backends this run tests on, from --orm-kit-backends or the ini option."""
    given = config.getoption("orm_kit_backends")
    names = [n.strip() for n in given.split(",") if n.strip()] if given else list(config.getini("orm_kit_backends"))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(f"orm-kit backends {', '.join(names) or '(none)'}: expected one or more of "
                                f"{', '.join(BACKENDS)}, e.g. --orm-kit-backends sqlite,postgres")
    return names


def pytest_report_header(config: pytest.Config) -> str:
    given = config.getoption("orm_kit_postgres_url") or os.environ.get(POSTGRES_URL_ENV)
    server = redact_url(given) if given else "a throwaway server, started when a test needs it"
    direct = _direct_url(config)
    migrated = f" (migrated over {redact_url(direct)})" if direct and direct != given else ""
    return f"orm-kit: database tests on {', '.join(backends(config))}; PostgreSQL: {server}{migrated}"


def _direct_url(config: pytest.Config) -> str | None:
    """The direct URL given: the option, else the environment's unless the server URL was given as an option
    (an explicit server never gets the environment's direct URL, which may be another server's)."""
    given = config.getoption("orm_kit_postgres_direct_url")
    if given or config.getoption("orm_kit_postgres_url"):
        return str(given) if given else None
    return os.environ.get(POSTGRES_DIRECT_URL_ENV) or None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "orm_kit_backend" not in metafunc.fixturenames:
        return
    chosen = backends(metafunc.config)
    marker = metafunc.definition.get_closest_marker("orm_kit_backends")
    if marker is not None:
        wanted = [str(name) for name in marker.args]
        unknown = [n for n in wanted if n not in BACKENDS]
        if unknown or not wanted:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: orm_kit_backends({', '.join(wanted)}) names "
                                    f"no backend of {', '.join(BACKENDS)}")
        chosen = [n for n in chosen if n in wanted]
    metafunc.parametrize("orm_kit_backend", chosen, indirect=True, ids=chosen)


@pytest.fixture
def orm_kit_backend(request: pytest.FixtureRequest) -> str:
    """The backend this run of the test uses: "sqlite" or "postgres"."""
    name = getattr(request, "param", None)
    if name is None:
        raise pytest.UsageError("orm_kit_backend has no backend: request it (or orm_kit_db) as a test argument, "
                                "not through request.getfixturevalue()")
    return str(name)


@pytest.fixture(scope="session")
def orm_kit_postgres_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """The test PostgreSQL server: --orm-kit-postgres-url, else the environment, else a throwaway one."""
    given = pytestconfig.getoption("orm_kit_postgres_url") or os.environ.get(POSTGRES_URL_ENV)
    if given:
        yield given
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(pgserver.running())
        except OrmKitError as exc:
            pytest.fail(f"could not start the test PostgreSQL server: {exc} (or set {POSTGRES_URL_ENV} to a "
                        "server whose user may CREATE DATABASE)", pytrace=False)
        yield url


@pytest.fixture(scope="session")
def orm_kit_postgres_direct_url(pytestconfig: pytest.Config, orm_kit_postgres_url: str) -> str:
    """A direct connection to the test server (for migrating past a pooler): the option, the environment, else
    orm_kit_postgres_url."""
    return _direct_url(pytestconfig) or orm_kit_postgres_url


def _models(spec: str) -> Sequence[type[peewee.Model]]:
    module_name, _, attribute = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise pytest.UsageError(f"orm_kit_models = {spec!r} cannot be loaded ({exc}); expected module:attribute, "
                                "e.g. myservice.models:MODELS") from None
    models = list(found) if isinstance(found, list | tuple) else None
    if not models or not all(isinstance(m, type) and issubclass(m, peewee.Model) for m in models):
        raise pytest.UsageError(f"orm_kit_models = {spec!r} is {found!r}; expected a list or tuple of peewee models")
    return models


@pytest.fixture(scope="session")
def orm_kit_schema(pytestconfig: pytest.Config) -> SchemaSetup:
    """What the test databases hold: the ini options, else the pytest_orm_kit_schema hook."""
    spec = str(pytestconfig.getini("orm_kit_models")).strip()
    folders: list[Path] = list(pytestconfig.getini("orm_kit_migrations"))
    if len(folders) > 1:
        raise pytest.UsageError(f"orm_kit_migrations names {len(folders)} folders; expected one")
    if spec:
        return SchemaSetup(models=_models(spec), migrations=folders[0] if folders else None)
    if folders:
        raise pytest.UsageError("orm_kit_migrations is set but orm_kit_models is not: name the models too "
                                "(orm_kit_models = myservice.models:MODELS)")
    schema: SchemaSetup | None = pytestconfig.hook.pytest_orm_kit_schema(config=pytestconfig)
    if schema is None:
        raise pytest.UsageError("orm-kit does not know your models: set orm_kit_models = module:MODELS (and "
                                "orm_kit_migrations = folder) in the pytest ini, implement pytest_orm_kit_schema, "
                                "or override the orm_kit_schema fixture")
    return schema


@pytest.fixture(scope="session")
def orm_kit_databases(orm_kit_schema: SchemaSetup,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionDatabases]:
    """The session's databases, one per backend, built on first use and removed at the end."""
    databases = SessionDatabases(orm_kit_schema, tmp_path_factory.mktemp("orm-kit"))
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def _orm_kit_postgres_database(orm_kit_postgres_url: str, orm_kit_postgres_direct_url: str,
                               orm_kit_databases: SessionDatabases) -> Iterator[peewee.Database]:
    # Its own fixture so that it is dropped before the throwaway server it lives on stops.
    direct = orm_kit_postgres_direct_url if orm_kit_postgres_direct_url != orm_kit_postgres_url else None
    try:
        try:
            db = orm_kit_databases.get("postgres", orm_kit_postgres_url, direct)
        except (ConfigurationError, DatabaseUnavailableError) as exc:
            # The message says what to fix; a traceback would print the URLs' passwords (frames' arguments).
            pytest.fail(f"cannot build the test database: {exc}", pytrace=False)
        yield db
    finally:
        orm_kit_databases.close("postgres")


@pytest.fixture
def orm_kit_sandbox(orm_kit_backend: str, orm_kit_databases: SessionDatabases, orm_kit_schema: SchemaSetup,
                    request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """The rolled-back transaction around this test (``.db`` the database, ``.hooks`` the committed hooks)."""
    db: peewee.Database = (request.getfixturevalue("_orm_kit_postgres_database") if orm_kit_backend == "postgres"
                           else orm_kit_databases.get(orm_kit_backend))
    db.bind(orm_kit_schema.models)
    with sandbox(db) as box:
        yield box


@pytest.fixture
def orm_kit_db(orm_kit_sandbox: Sandbox) -> peewee.Database:
    """The migrated test database, models bound, inside a transaction rolled back after the test."""
    return orm_kit_sandbox.db


@pytest.fixture
def on_commit_hooks(orm_kit_sandbox: Sandbox) -> list[Callable[[], object]]:
    """The on_commit hooks whose block ended well in this test (they ran), in order."""
    return orm_kit_sandbox.hooks


def _test_db(request: pytest.FixtureRequest) -> peewee.Database | None:
    if "orm_kit_db" in request.fixturenames:
        db: peewee.Database = request.getfixturevalue("orm_kit_db")
        return db
    return None


@pytest.fixture
def record_queries(request: pytest.FixtureRequest) -> Callable[..., AbstractContextManager[queries.QueryLog]]:
    """``with record_queries() as log``: the statements the block ran (on orm_kit_db when the test uses it)."""
    default = _test_db(request)

    def bound(db: peewee.Database | None = None) -> AbstractContextManager[queries.QueryLog]:
        return queries.record_queries(db if db is not None else default)

    return bound


@pytest.fixture
def max_queries(request: pytest.FixtureRequest) -> Callable[..., AbstractContextManager[queries.QueryLog]]:
    """``with max_queries(2)``: fail the test when the block runs more than two queries."""
    default = _test_db(request)

    def bound(limit: int, db: peewee.Database | None = None) -> AbstractContextManager[queries.QueryLog]:
        return queries.max_queries(limit, db if db is not None else default)

    return bound


@pytest.fixture
def no_n_plus_one(request: pytest.FixtureRequest) -> Callable[..., AbstractContextManager[queries.QueryLog]]:
    """``with no_n_plus_one()``: fail the test when one SELECT shape repeats per row in the block."""
    default = _test_db(request)

    def bound(db: peewee.Database | None = None, *,
              threshold: int = queries.DEFAULT_N_PLUS_ONE_THRESHOLD) -> AbstractContextManager[queries.QueryLog]:
        return queries.no_n_plus_one(db if db is not None else default, threshold=threshold)

    return bound
