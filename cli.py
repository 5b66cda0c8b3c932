"""The ``orm-kit`` command: thin click wrappers over library calls.

Each command parses its options, calls one library function and prints what it returns. Library errors
(:class:`orm_kit.OrmKitError`) become one line on stderr and exit code 1; bad usage exits 2.

State lives on ``ctx.obj`` only: one :class:`Context` that every option writes into. The options a
group shares (``--database``, ``--migrations``, ``--lock-timeout``, ...) are declared on each command
that uses them, and also accepted on the group for the commands that use them, so ``orm-kit --database
URL migrate up`` = ``orm-kit migrate up --database URL`` and each ``--help`` lists only what that
command reads; every command that reads ``--database`` also takes ``--echo`` (print each SQL statement
with its duration to stderr); the ``migrate`` commands also take ``--direct-database`` (a connection past
a transaction pooler, :func:`orm_kit.db.resolve_migration_url`). The platform's defaults (its models,
migrations, seed data and registry) come from :mod:`orm_kit.platform`; a project's own app comes from its
``pyproject.toml`` (:mod:`orm_kit.config`, flags winning), and every app's parts are passed into the
toolkit's engines here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar
from urllib.parse import urlsplit

import click
import peewee

from orm_kit import diagram, platform, seeding, synthetic
from orm_kit.apps import App, bind, migration_sources, seed_sources
from orm_kit.bounds import MAX_RETRIES, MAX_WAIT_SECONDS
from orm_kit.config import Overrides, Project, load_project
from orm_kit.db import (
    DIRECT_ENV_VAR,
    open_database,
    parse_url,
    redact_url,
    resolve_migration_url,
    resolve_url,
    scrub,
    sqlite_file,
)
from orm_kit.dbshell import run_client
from orm_kit.echo import echo
from orm_kit.errors import ConfigurationError, DataLossError, OrmKitError, SeedProblemsError, first_line
from orm_kit.migrate import (
    DEFAULT_LOCK_TIMEOUT,
    AppMigrations,
    DriftReport,
    LockPolicy,
    Runner,
    Status,
    check,
    create_migration,
    lint,
    make_migration,
    preview_new_sql,
    preview_sql,
    verify,
)
from orm_kit.migrate import baseline as adopt
from orm_kit.migrate.history import format_utc
from orm_kit.migrate.lockwait import DEFAULT_LOCK_RETRIES, DEFAULT_STATEMENT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT
from orm_kit.migrate.plan import MAX_STEPS
from orm_kit.shell import INTERFACES, banner, interact, namespace
from orm_kit.synthetic import generate, remove_generated
from orm_kit.transactions import on_commit, transaction

F = TypeVar("F", bound=Callable[..., Any])
DIALECTS = ("sqlite", "postgres")


class Seconds(click.FloatRange):
    """Seconds the database can be told to wait: 0 (where it means something) up to 2^31 - 1 ms, never NaN (which
    FloatRange lets through: it compares false with both bounds)."""

    def __init__(self, *, zero_ok: bool) -> None:
        super().__init__(min=0, max=MAX_WAIT_SECONDS, min_open=not zero_ok)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return number


class Context:
    """Everything the options said, for every command; the database is opened on demand."""

    def __init__(self) -> None:
        self.database: str | None = None
        self.direct_database: str | None = None
        self.migrating = False  # a `migrate` command: the direct URL, when there is one
        self.migrations_dir: Path | None = None
        self.lock_timeout: float = DEFAULT_LOCK_TIMEOUT
        self.statement_lock_timeout: float = DEFAULT_STATEMENT_LOCK_TIMEOUT
        self.lock_retries: int = DEFAULT_LOCK_RETRIES
        self.statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
        self.allow_out_of_order = False
        self.seed_dir: Path | None = None
        self.replace_seeds = False
        self.sets: tuple[str, ...] = ()
        self.dry_run = False
        self.app: str | None = None
        self.models: tuple[str, ...] = ()
        self.seed_registry: str | None = None
        self.project_path: Path | None = None
        self.echo = False
        self.given_to_group: list[str] = []  # shared options given before the subcommand, by name
        self._db: peewee.Database | None = None
        self._created: Path | None = None  # a SQLite file this command's opening of the database created
        self._project: Project | None = None

    @property
    def resolved_url(self) -> str:
        """The database URL this command uses: for `migrate`, --direct-database, --database, then
        $ORM_KIT_DIRECT_DATABASE_URL; else --database; then the environment, then the default."""
        return resolve_migration_url(self.direct_database, self.database) if self.migrating else \
            resolve_url(self.database)

    @property
    def url(self) -> str:
        """:attr:`resolved_url`, checked: never an in-memory SQLite database."""
        url = self.resolved_url
        if _in_memory_sqlite(url):
            # Each command opens its own connection: an in-memory database would vanish when it ends.
            raise click.UsageError(f"{url!r} is an in-memory SQLite database, which disappears when the command "
                                   "ends; name a file instead, e.g. sqlite:///orm_kit.db")
        return url

    @property
    def project(self) -> Project:
        """Every app: the platform's, and the project's from pyproject.toml and the flags (read once)."""
        if self._project is None:
            self._project = load_project(platform.APP, pyproject=self.project_path, overrides=Overrides(
                self.app, self.models, self.migrations_dir, self.seed_dir, self.seed_registry, self.replace_seeds))
        return self._project

    @property
    def apps(self) -> tuple[App, ...]:
        """The apps, the one this command works on (--app, else the project's own) last: the engines' default."""
        try:
            return self.project.ordered(self.app)
        except ConfigurationError as exc:
            if self.app is not None and self.app not in {a.name for a in self.project.apps}:
                raise click.UsageError(str(exc)) from None
            raise

    def checked_apps(self) -> tuple[App, ...]:
        """:attr:`apps`, read now: the project's configuration is read and ``--app`` checked before anything else."""
        return self.apps

    def migration_apps(self) -> list[AppMigrations]:
        """What the migration engine takes: every app's folder and models, the chosen app last."""
        return migration_sources(self.apps)

    @property
    def db(self) -> peewee.Database:
        """The database, opened (and every app's models bound to it) on first use."""
        if self._db is None:
            apps = self.project.apps
            path = sqlite_file(self.url)
            try:
                existed = path is None or path.exists()
            except OSError:  # a name no filesystem holds (ENAMETOOLONG): open_database() says so, typed
                existed = True
            self._db = open_database(self.url)
            self._created = None if existed else path
            bind(self._db, apps)
            if self.echo:
                echo(self._db)
        return self._db

    def existing_db(self) -> peewee.Database:
        """The database, refusing a SQLite file that is not there: only `migrate up` may create one."""
        self.checked_apps()  # a bad configuration (or --app) is the first thing to fix
        open_database(self.url, connect=False, must_exist=True)
        return self.db

    def models_of_every_app(self) -> list[type[peewee.Model]]:
        """The platform's models, then every other app's."""
        return [model for app in self.project.apps for model in app.models]

    def seed_sources(self) -> list[seeding.SeedSource]:
        """Every app's seed data, the platform's first (the order rows load in)."""
        self.checked_apps()
        return seed_sources(self.project.apps)

    @property
    def policy(self) -> LockPolicy:
        """How long migration statements may wait for locks and run, and how often they are retried."""
        return LockPolicy(self.statement_lock_timeout, self.lock_retries, self.statement_timeout)

    def runner(self, *, may_create: bool = False) -> Runner:
        """A runner over every app's migrations and the database, with the chosen timeouts; progress goes to
        stderr."""
        return Runner(self.db if may_create else self.existing_db(), self.migration_apps(),
                      lock_timeout=self.lock_timeout, allow_out_of_order=self.allow_out_of_order, policy=self.policy,
                      progress=lambda line: click.echo(line, err=True))

    def writable_app(self) -> str:
        """The app a new migration goes to: only ever into a folder the user named, never the installed package."""
        app = self.apps[-1]
        if app.installed:
            raise click.UsageError(
                "name the folder for the new file: orm-kit migrate --migrations DIR create|make NAME "
                f"(the default, {app.migrations}, is the installed package's own history; a service's own tables "
                "get an app of their own: [tool.orm-kit] in its pyproject.toml)")
        return app.name

    def close(self) -> None:
        """Close the database; a SQLite file this command created and left without a table goes again (a
        refused `migrate up 9999` leaves nothing behind)."""
        if self._db is not None and not self._db.is_closed():
            empty = self._created is not None and not self._db.get_tables()
            self._db.close()
            if empty and self._created is not None:
                for end in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self._created}{end}").unlink(missing_ok=True)


def _in_memory_sqlite(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": open_database says what is wrong with it
        return False
    return parts.scheme.lower() == "sqlite" and not parts.netloc and parts.path.lstrip("/") in ("", ":memory:")


def _state(ctx: click.Context) -> Context:
    return ctx.ensure_object(Context)


def library_errors(command: F) -> F:
    """Turn an :class:`OrmKitError` (and a raw database error) into one line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SeedProblemsError as exc:
            if len(exc.problems) + exc.more == 1:
                raise click.ClickException(str(exc)) from None
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            more = f", {exc.more} more not shown" if exc.more else ""
            raise click.ClickException(f"{len(exc.problems) + exc.more} problems in the seed files (each above{more}); "
                                       "nothing was written") from None
        except OrmKitError as exc:
            message = str(exc)
        except peewee.DatabaseError as exc:
            state = click.get_current_context().find_object(Context)
            url = state.resolved_url if state is not None else resolve_url()
            message = f"database error on {redact_url(url)}: {scrub(first_line(exc, typed=False), url)}"
        # Raised outside the except blocks: the error it replaces (a driver's, quoting the row or the URL) is
        # not chained to it.
        raise click.ClickException(message)

    return wrapper  # type: ignore[return-value]


# --- options shared between a group and its commands ----------------------------------------------------
# Each stores its value on the Context (never in the command's arguments). Given on a group, it is noted,
# and a subcommand that does not read it is refused rather than silently ignoring it.


def _store(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False or value == ():
            return
        state = _state(ctx)
        if isinstance(value, tuple):  # a repeatable option given on the group and the subcommand: all of them
            value = tuple(dict.fromkeys((*getattr(state, attribute), *value)))
        setattr(state, attribute, value)
        if isinstance(ctx.command, click.Group) and param.name:
            state.given_to_group.append(param.name)

    return store


_SHARED: dict[str, Callable[[], Callable[[F], F]]] = {
    "database": lambda: click.option(
        "--database", metavar="URL", default=None, expose_value=False, callback=_store("database"),
        help="Database URL (default: $ORM_KIT_DATABASE_URL, $DATABASE_URL, sqlite:///orm_kit.db)."),
    "direct_database": lambda: click.option(
        "--direct-database", metavar="URL", default=None, expose_value=False, callback=_store("direct_database"),
        help=f"A direct connection to the same database for migrations, past a transaction pooler (default: "
             f"${DIRECT_ENV_VAR} unless --database is given; else the --database URL)."),
    "migrations": lambda: click.option(
        "--migrations", type=click.Path(file_okay=False, path_type=Path), default=None, expose_value=False,
        callback=_store("migrations_dir"),
        help="The project app's folder of NNNN_name.py migrations (default: pyproject.toml's; without a project, "
             "the platform's)."),
    "lock_timeout": lambda: click.option(
        "--lock-timeout", type=Seconds(zero_ok=True), default=None, expose_value=False,
        callback=_store("lock_timeout"),
        help=f"Seconds to wait for another runner's migration lock (default {DEFAULT_LOCK_TIMEOUT:g})."),
    "statement_lock_timeout": lambda: click.option(
        "--statement-lock-timeout", type=Seconds(zero_ok=False), default=None, expose_value=False,
        callback=_store("statement_lock_timeout"),
        help=f"PostgreSQL: longest a migration statement waits for a table lock, so the longest the application "
             f"queues behind it (default {DEFAULT_STATEMENT_LOCK_TIMEOUT:g})."),
    "lock_retries": lambda: click.option(
        "--lock-retries", type=click.IntRange(min=0, max=MAX_RETRIES), default=None, expose_value=False,
        callback=_store("lock_retries"),
        help=f"PostgreSQL: attempts after a migration ran out of lock time, with growing waits "
             f"(default {DEFAULT_LOCK_RETRIES})."),
    "statement_timeout": lambda: click.option(
        "--statement-timeout", type=Seconds(zero_ok=True), default=None, expose_value=False,
        callback=_store("statement_timeout"),
        help=f"PostgreSQL: longest a statement of a migration's transaction may run, 0 for no limit "
             f"(default {DEFAULT_STATEMENT_TIMEOUT:g})."),
    "allow_out_of_order": lambda: click.option(
        "--allow-out-of-order", is_flag=True, default=False, expose_value=False, callback=_store("allow_out_of_order"),
        help="Apply a pending migration numbered below an applied one."),
    "seeds": lambda: click.option(
        "--seeds", type=click.Path(file_okay=False, path_type=Path), default=None, expose_value=False,
        callback=_store("seed_dir"), help="A folder of seed sets added to the project app's own (pyproject.toml's; "
                                          "without a project, the platform's shipped sets)."),
    "replace_seeds": lambda: click.option(
        "--replace-seeds", is_flag=True, default=False, expose_value=False, callback=_store("replace_seeds"),
        help="Use only --seeds DIR's sets, not the app's own folder too."),
    "seed_registry": lambda: click.option(
        "--seed-registry", metavar="MODULE:NAME", default=None, expose_value=False, callback=_store("seed_registry"),
        help="The SeedRegistry of the tables the project app's seed files fill."),
    "project": lambda: click.option(
        "--project", "project_path", type=click.Path(path_type=Path), default=None, expose_value=False,
        callback=_store("project_path"),
        help="pyproject.toml (or its folder) with [tool.orm-kit] (default: the nearest one above the working "
             "folder)."),
    "app": lambda: click.option(
        "--app", metavar="NAME", default=None, expose_value=False, callback=_store("app"),
        help="The app to work on (default: the project's own; the platform without one)."),
    "app_of_models": lambda: click.option(
        "--app", metavar="NAME", default=None, expose_value=False, callback=_store("app"),
        help="The name of the app --models describes, when no pyproject.toml names it (every app is covered)."),
    "models": lambda: click.option(
        "--models", metavar="MODULE", multiple=True, expose_value=False, callback=_store("models"),
        help="A module of the project app's models (repeatable; instead of pyproject.toml's)."),
    "set": lambda: click.option(
        "--set", "sets", metavar="NAME", multiple=True, expose_value=False, callback=_store("sets"),
        help="Only this set (repeatable)."),
    "dry_run": lambda: click.option(
        "--dry-run", is_flag=True, default=False, expose_value=False, callback=_store("dry_run"),
        help="Report what would change; change nothing."),
    "echo": lambda: click.option(
        "--echo", is_flag=True, default=False, expose_value=False, callback=_store("echo"),
        help="Print each SQL statement with its duration to stderr (secrets masked; also: ORM_KIT_ECHO=1)."),
}


def uses(*names: str, echo: bool = True) -> Callable[[F], F]:
    """Declare the shared options a command reads (in this order in its --help); --echo comes with --database."""
    if echo and "database" in names and "echo" not in names:
        at = names.index("database") + 1
        names = (*names[:at], "echo", *names[at:])

    def decorate(command: F) -> F:
        for name in reversed(names):
            command = _SHARED[name]()(command)
        return command

    return decorate


def _refuse_unused_group_options(ctx: click.Context) -> None:
    """A shared option given on the group must be one the chosen subcommand reads."""
    group = ctx.command
    assert isinstance(group, click.Group)
    name = ctx.invoked_subcommand
    sub = group.commands.get(name) if name else None
    if sub is None:
        return
    read = {param.name for param in sub.params}
    unused = [option for option in _state(ctx).given_to_group if option not in read]
    if unused:
        # As typed: a parameter's name need not be its flag (--set stores into `sets`).
        flag = next(p.opts[0] for p in group.params if p.name == unused[0])
        raise click.UsageError(f"{flag} does not apply to `{ctx.command_path} {name}`; see "
                               f"`{ctx.command_path} {name} --help` for the options it takes")


@click.group()
@uses("database")
@click.version_option(package_name="orm-kit")
@click.pass_context
def main(ctx: click.Context) -> None:
    """orm-kit: migrate and seed the deployment platform's database."""
    state = _state(ctx)
    state.given_to_group.clear()  # --database applies to every command
    ctx.call_on_close(state.close)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


class _Report(Protocol):
    @property
    def ok(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


def _finish(ctx: click.Context, report: _Report, as_json: bool, lines: Callable[[], list[str]]) -> None:
    """Print a report as text or JSON; exit 1 unless it is ok (so the command can gate a deploy)."""
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else "\n".join(lines()))
    if not report.ok:
        ctx.exit(1)


# --- migrate ----------------------------------------------------------------------------------------------


_RUNS = ("database", "direct_database", "project", "app", "models", "migrations", "lock_timeout",
         "statement_lock_timeout", "lock_retries", "statement_timeout", "allow_out_of_order")


@main.group(invoke_without_command=True)
@uses(*_RUNS)
@click.pass_context
@library_errors
def migrate(ctx: click.Context) -> None:
    """Apply pending migrations of every app (the same as `migrate up`)."""
    _state(ctx).migrating = True  # every migrate command reaches the database directly when it is told how
    _refuse_unused_group_options(ctx)
    if ctx.invoked_subcommand is None:
        ctx.invoke(up)


@migrate.command()
@click.argument("target", required=False)
@uses(*_RUNS)
@click.pass_context
@library_errors
def up(ctx: click.Context, target: str | None) -> None:
    """Apply pending migrations of every app, or what TARGET ([APP:]NNNN) or --app needs."""
    state = _state(ctx)
    applied = state.runner(may_create=True).up(target, state.app)
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("nothing to apply: the database is up to date")


@migrate.command()
@click.argument("target", required=False)
@click.option("--steps", type=click.IntRange(min=1, max=MAX_STEPS), default=None, help="Revert the last N migrations.")
@click.option("--yes", "-y", is_flag=True, help="Drop tables and columns that hold rows without asking.")
@uses(*_RUNS)
@click.pass_context
@library_errors
def down(ctx: click.Context, target: str | None, steps: int | None, yes: bool) -> None:
    """Revert one app's last migration, its last --steps N, or every one applied after TARGET ([APP:]NNNN).

    A down that drops tables or columns holding rows says how many and needs --yes (or yes at the prompt on a
    terminal).
    """
    if target is not None and steps is not None:
        raise click.UsageError("pass either TARGET or --steps, not both")
    runner = _state(ctx).runner()
    try:
        reverted = runner.down(steps=steps, target=target, allow_data_loss=yes)
    except DataLossError as exc:
        if not sys.stdin.isatty():
            raise
        for line in [str(loss) for loss in exc.losses] or [str(exc)]:
            click.echo(line, err=True)
        if not click.confirm("These rows will be lost. Revert anyway?", default=False, err=True):
            raise click.ClickException("nothing was reverted") from None
        reverted = runner.down(steps=steps, target=target, allow_data_loss=True)
    for name in reverted:
        click.echo(f"reverted {name}")
    if not reverted:
        click.echo("nothing to revert")


def _status_lines(status: Status) -> list[str]:
    marks = {"applied": "x", "baseline": "b", "pending": " ", "late": " "}
    several = len(status.apps) > 1
    names = [f"{m.app}:{m.name}" if several else m.name for m in status.migrations]
    width = max([40, *(len(name) for name in names)])
    lines = []
    for m, name in zip(status.migrations, names, strict=True):
        when = format_utc(m.applied_at) if m.applied_at else ""
        took = f"{m.duration_ms} ms" if m.duration_ms is not None else ""
        digest = (m.recorded_checksum or m.checksum or "")[:12]
        mark = marks.get(m.state, "!")
        lines.append(f"[{mark}] {name:<{width}} {m.state:<10} {when:<24} {took:>9}  {digest}".rstrip())
    lines += [f"problem: {problem}" for problem in status.problems]
    if status.pending:
        lines.append(f"pending: {', '.join(status.pending)} (run `orm-kit migrate up`)")
    if status.other_apps:
        lines.append(f"note: the history also records app(s) {', '.join(status.other_apps)}, not configured here "
                     "(left alone)")
    return lines


@migrate.command()
@json_option
@uses("database", "direct_database", "project", "app_of_models", "models", "migrations", "allow_out_of_order")
@click.pass_context
@library_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Every app's migrations and their state; exits 1 when anything is pending or wrong (to gate a deploy)."""
    result = _state(ctx).runner().status()
    _finish(ctx, result, as_json, lambda: _status_lines(result) or ["no migrations"])


@migrate.command()
@click.argument("name")
@uses("project", "app", "models", "migrations")
@click.pass_context
@library_errors
def create(ctx: click.Context, name: str) -> None:
    """Write the app's next numbered migration file from a template."""
    state = _state(ctx)
    app = state.writable_app()
    click.echo(f"created {create_migration(state.migration_apps(), name, app=app)}")


@migrate.command()
@click.argument("name")
@uses("database", "direct_database", "project", "app", "models", "migrations")
@click.pass_context
@library_errors
def make(ctx: click.Context, name: str) -> None:
    """Generate the app's next migration from what its models have and the migrations do not."""
    state = _state(ctx)
    app = state.writable_app()
    # Only the kind of database matters (the migrations are replayed on a scratch one): nothing is created.
    db = open_database(state.url, connect=False)
    path = make_migration(db, state.migration_apps(), name, app=app)
    click.echo(f"created {path} (read it, and finish every TODO, before applying it)" if path
               else "nothing to generate: the migrations already produce the models' schema")


@migrate.command("check")
@json_option
@uses("database", "direct_database", "project", "app_of_models", "models", "migrations")
@click.pass_context
@library_errors
def check_command(ctx: click.Context, as_json: bool) -> None:
    """Three-way drift, per app: models vs migrations vs the live database; exits 1 on any difference."""
    state = _state(ctx)
    report = check(state.existing_db(), state.migration_apps())
    _finish(ctx, report, as_json, lambda: _check_lines(report))


def _check_lines(report: DriftReport) -> list[str]:
    several = len(report.apps) > 1
    lines = [f"problem: {problem}" for problem in report.problems]
    for app, findings in report.by_app().items():
        for finding in findings:
            if finding.unexpected:
                lines.append(f"unexpected: {finding}")
            else:
                lines.append(f"drift ({app}): {finding}" if several else f"drift: {finding}")
    lines += [f"unsafe: {finding}" for finding in report.lint]
    if report.other_apps and any(f.unexpected for f in report.findings):
        lines.append(f"note: the history also records app(s) {', '.join(report.other_apps)}, not configured here: "
                     "their tables look unexpected from here (check from that project)")
    if report.pending:
        lines.append(f"pending: {', '.join(report.pending)} (run `orm-kit migrate up`)")
    if report.ok:
        lines.append("no drift: models, migrations and the database agree" + (
            f" ({', '.join(report.apps)})" if several else ""))
    return lines


@migrate.command("lint")
@json_option
@uses("database", "direct_database", "project", "app", "models", "migrations", "allow_out_of_order")
@click.pass_context
@library_errors
def lint_command(ctx: click.Context, as_json: bool) -> None:
    """Each pending migration's statements that would lock a table in use, and the safe recipe (every app's, or
    what `up --app` would run); exits 1 on any."""
    state = _state(ctx)
    report = lint(state.existing_db(), state.migration_apps(), app=state.app,
                  allow_out_of_order=state.allow_out_of_order)
    _finish(ctx, report, as_json, lambda: [f"problem: {problem}" for problem in report.problems] + [
        f"{'ignored' if finding.ignored is not None else 'unsafe'}: {finding}" for finding in report.findings] + (
        [f"note: {report.note}"] if report.note else []) + (
        [f"lint: {len(report.checked)} pending migration(s), nothing unsafe" if report.checked
         else "lint: nothing pending"] if report.ok else []))


@migrate.command()
@click.argument("target", required=False)
@click.option("--down", "down_", is_flag=True, help="The SQL `migrate down` would run instead.")
@click.option("--steps", type=click.IntRange(min=1, max=MAX_STEPS), default=None,
              help="With --down: the last N migrations.")
@click.option("--dialect", type=click.Choice(DIALECTS), default=None,
              help="The SQL of every migration (or up to TARGET) on an empty database of this kind: sqlite needs no "
                   "database at all; postgres renders on the PostgreSQL server --database names, in a scratch schema "
                   "rolled back (its tables and history are not read).")
@uses("database", "direct_database", "project", "app", "models", "migrations", "statement_lock_timeout",
      "lock_retries", "statement_timeout", "allow_out_of_order")
@click.pass_context
@library_errors
def sql(ctx: click.Context, target: str | None, down_: bool, steps: int | None, dialect: str | None) -> None:
    """Print the SQL `up` (or `down`) would run, captured on a scratch database; runs nothing."""
    state = _state(ctx)
    if steps is not None and not down_:
        raise click.UsageError("--steps counts migrations to revert, so it goes with --down; the SQL of `up` takes a "
                               "TARGET instead (orm-kit migrate sql 0003)")
    if dialect is not None:
        if down_:
            raise click.UsageError("--dialect shows what a new, empty database gets: there is nothing to revert "
                                   "(drop --down, or drop --dialect to see the down of your database)")
        plans = preview_new_sql(_render_on(state, dialect), state.migration_apps(), target, app=state.app,
                                policy=state.policy)
    else:
        plans = preview_sql(state.existing_db(), state.migration_apps(), target, down=down_, steps=steps,
                            allow_out_of_order=state.allow_out_of_order, app=state.app, policy=state.policy)
    for plan in plans:
        how = ("" if not plan.settings else
               f": one transaction, rolled back and retried on a lock timeout ({state.policy.describe()})"
               if plan.atomic else ": atomic = False, no transaction")
        click.echo(f"-- {plan.name} ({plan.direction}){how}")
        for statement in [*plan.settings, *plan.statements]:
            click.echo(statement.rstrip().rstrip(";") + ";")
        if plan.after_commit:
            click.echo(f"-- {plan.name} ({plan.direction}), after its COMMIT: each step on its own, retried on a "
                       "lock timeout")
            for statement in plan.after_commit:
                click.echo(statement.rstrip().rstrip(";") + ";")
    if not plans:
        click.echo("-- nothing to run")


def _render_on(state: Context, dialect: str) -> peewee.Database:
    """The database `migrate sql --dialect` captures on: for sqlite none of the user's; for postgres the server the
    database URL names (only a scratch schema is made there, in a transaction that is rolled back)."""
    state.checked_apps()
    if dialect == "sqlite":
        return peewee.SqliteDatabase(None)  # only says the kind: the scratch database is a temporary file
    url = state.resolved_url
    if parse_url(url).family != "postgres":
        raise click.UsageError(
            "--dialect postgres renders the SQL on a PostgreSQL server, because the migrator asks the server's "
            "catalog as it goes: name one with --database postgresql://user:password@host/dbname (or "
            "ORM_KIT_DATABASE_URL); only a scratch schema is made there, in a transaction that is rolled back, and "
            "its own tables and history are never read")
    return state.db


@migrate.command("verify")
@json_option
@uses("database", "direct_database", "project", "app_of_models", "models", "migrations")
@click.pass_context
@library_errors
def verify_command(ctx: click.Context, as_json: bool) -> None:
    """On a scratch database: every app's migrations up, down, up; the result must equal the models."""
    state = _state(ctx)
    report = verify(state.existing_db(), state.migration_apps())
    _finish(ctx, report, as_json, lambda: [f"verified on {report.on}"] + [
        line for step in report.steps
        for line in [f"{'FAIL' if step.problems else 'ok'} {step.name}", *(f"  {p}" for p in step.problems)]
    ] + [f"drift: {line}" for line in report.drift])


@migrate.command()
@click.argument("version")
@uses("database", "direct_database", "project", "app", "models", "migrations", "lock_timeout")
@click.pass_context
@library_errors
def baseline(ctx: click.Context, version: str) -> None:
    """Adopt an existing database whose schema is what the app's migrations up to VERSION produce."""
    for name in adopt(_state(ctx).runner(), version):
        click.echo(f"recorded {name} (baseline)")


@migrate.command()
@uses("database", "direct_database", "project", "app", "models", "migrations", "lock_timeout",
      "statement_lock_timeout", "lock_retries", "statement_timeout")
@click.pass_context
@library_errors
def repair(ctx: click.Context) -> None:
    """Accept edited checksums, finish steps left after a commit, clear failed `atomic = False` runs (every
    app's, or --app's)."""
    state = _state(ctx)
    report = state.runner().repair(state.app)
    for name in report.rechecksummed:
        click.echo(f"re-recorded the checksum of {name}")
    for name in report.cleared:
        click.echo(f"cleared the unfinished run of {name}")
    for name in report.finished:
        click.echo(f"finished the steps {name} left for after its commit")
    for name in report.missing:
        click.echo(f"cannot repair {name}: its file is missing (restore it)")
    if not (report.rechecksummed or report.cleared or report.missing or report.finished):
        click.echo("nothing to repair")


# --- seed -------------------------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@uses("database", "project", "app", "models", "seeds", "replace_seeds", "seed_registry", "set", "dry_run")
@click.pass_context
@library_errors
def seed(ctx: click.Context) -> None:
    """Load seed sets into a migrated database (the same as `seed load`)."""
    _refuse_unused_group_options(ctx)
    if ctx.invoked_subcommand is None:
        ctx.invoke(load)


@seed.command("load")
@uses("database", "project", "app", "models", "seeds", "replace_seeds", "seed_registry", "set", "dry_run")
@click.pass_context
@library_errors
def load(ctx: click.Context) -> None:
    """Insert and update seed rows of every app, matched by natural key, in one transaction."""
    state = _state(ctx)
    dry_run = state.dry_run
    result = seeding.load(state.existing_db(), state.seed_sources(), sets=list(state.sets) or None, dry_run=dry_run)
    for change in result.changes:
        if change.action == "update" or dry_run:
            fields = f": {', '.join(change.fields)}" if change.action == "update" else ""
            click.echo(f"{'would ' if dry_run else ''}{change.action} {change.table} {change.key}{fields}")
    for name, count in result.stale.items():
        click.echo(f"note: {count} row(s) loaded earlier by set {name!r} are no longer in its files "
                   f"(`orm-kit seed remove {name}` and load again to drop them)")
    names = ", ".join(result.sets)
    if dry_run:
        click.echo(f"dry run, nothing written: {names} would insert {result.inserted} and update {result.updated} "
                   f"row(s); {result.unchanged} unchanged")
    else:
        click.echo(f"seeded {names}: {result.inserted} inserted, {result.updated} updated, "
                   f"{result.unchanged} unchanged")


@seed.command("status")
@uses("database", "project", "app", "models", "seeds", "replace_seeds", "seed_registry", "set")
@click.pass_context
@library_errors
def seed_status(ctx: click.Context) -> None:
    """Show which sets are loaded and whether their files changed since; exit 1 unless all shown are loaded.

    With --set, only those sets: gate a deploy that loads some sets on just those.
    """
    state = _state(ctx)
    sources = state.seed_sources()
    sets = seeding.status(state.existing_db(), sources, sets=list(state.sets) or None)
    folders = ", ".join(dict.fromkeys(str(source.directory) for source in sources))
    for item in sets:
        when = f"  {item.loaded_at:%Y-%m-%d %H:%M:%S} UTC" if item.loaded_at else ""
        where = f" (recorded in the database, not in {folders})" if item.state == "files missing" else ""
        click.echo(f"{item.name:<20} {item.state:<13} {item.rows:>6} rows{when}{where}")
    click.echo(f"seed folders: {folders}")
    if any(item.state != "loaded" for item in sets):
        ctx.exit(1)


@seed.command("remove")
@click.argument("name")
@uses("database", "project", "app", "models", "seed_registry", "dry_run")
@click.pass_context
@library_errors
def seed_remove(ctx: click.Context, name: str) -> None:
    """Delete the rows set NAME (APP:SET for an app's) loaded (refused if other rows still refer to them)."""
    state = _state(ctx)
    result = seeding.remove(state.existing_db(), state.seed_sources(), name, dry_run=state.dry_run)
    counts = ", ".join(f"{count} {table}" for table, count in result.deleted.items()) or "no rows"
    click.echo(f"{'would remove' if state.dry_run else 'removed'} set {name}: {counts}")
    if result.gone:
        gone = ", ".join(f"{count} {table}" for table, count in result.gone.items())
        click.echo(f"note: {gone} row(s) it inserted were already deleted or their ids reused; left alone")


@seed.command("generate")
@click.option("--deployments", "count", type=click.IntRange(min=0, max=synthetic.MAX_DEPLOYMENTS), default=10_000,
              show_default=True, help="How many deployments to generate.")
@click.option("--random-seed", type=click.IntRange(min=0, max=synthetic.MAX_RANDOM_SEED), default=0,
              show_default=True, help="The same seed gives the same history.")
@click.option("--services", type=click.IntRange(min=1, max=synthetic.MAX_SERVICES), default=20, show_default=True,
              help="How many synthetic services deploy.")
@click.option("--days", type=click.IntRange(min=1, max=synthetic.MAX_DAYS), default=90, show_default=True,
              help="How long the history spans.")
@uses("database")
@click.pass_context
@library_errors
def seed_generate(ctx: click.Context, count: int, random_seed: int, services: int, days: int) -> None:
    """Insert a deterministic synthetic history: deployments with their releases and incidents."""
    db = _state(ctx).existing_db()
    started = time.perf_counter()
    with _progress(count) as report:
        result = generate(db, deployments=count, random_seed=random_seed, services=services, days=days,
                          progress=report)
    seconds = time.perf_counter() - started
    noun = "incident" if result.incidents == 1 else "incidents"
    click.echo(f"generated {result.deployments} deployments, {result.releases} releases and {result.incidents} "
               f"{noun} (random seed {random_seed}) in {seconds:.1f} s, {result.rows / seconds:,.0f} rows/s")


@seed.command("remove-generated")
@click.argument("random_seed", type=click.IntRange(min=0, max=synthetic.MAX_RANDOM_SEED))
@uses("database")
@click.pass_context
@library_errors
def seed_remove_generated(ctx: click.Context, random_seed: int) -> None:
    """Delete the synthetic history `seed generate --random-seed RANDOM_SEED` made."""
    result = remove_generated(_state(ctx).existing_db(), random_seed)
    click.echo(f"removed {result.deployments} deployments, {result.releases} releases, {result.incidents} "
               f"incidents and {result.services} services (random seed {random_seed})")


@contextlib.contextmanager
def _progress(total: int, stream: TextIO | None = None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal; plain lines (every tenth) otherwise. ``stream``: stdout unless given."""
    out = stream if stream is not None else sys.stdout  # looked up now: click's test runner swaps sys.stdout
    if out.isatty():
        with click.progressbar(length=total, label="deployments", file=out) as bar:
            yield lambda done, _total: bar.update(done - bar.pos)
        return
    shown = [0]

    def plain(done: int, all_: int) -> None:
        tenth = done * 10 // max(all_, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            click.echo(f"{done}/{all_} deployments", file=out)

    yield plain


# --- schema -----------------------------------------------------------------------------------------------


@main.group()
def schema() -> None:
    """Look at the platform's schema."""


@schema.command("diagram")
@click.option("--format", "fmt", type=click.Choice(diagram.FORMATS), default="mermaid", show_default=True,
              help="Mermaid erDiagram (for Markdown) or Graphviz dot (dot -Tsvg).")
@uses("project", "app_of_models", "models")
@click.pass_context
@library_errors
def schema_diagram(ctx: click.Context, fmt: str) -> None:
    """Print every app's models as an entity-relationship diagram: tables, keys, cardinalities, on-delete actions."""
    click.echo(diagram.render(_state(ctx).models_of_every_app(), fmt), nl=False)


# --- shell ------------------------------------------------------------------------------------------------


@main.command()
@click.option("--interface", "-i", type=click.Choice(INTERFACES), default="auto", show_default=True,
              help="IPython when installed (auto), or the standard Python prompt.")
@click.option("--command", "-c", default=None, help="Run this Python code in the shell's namespace and exit.")
@uses("database", "project", "app_of_models", "models")
@click.pass_context
@library_errors
def shell(ctx: click.Context, interface: str, command: str | None) -> None:
    """A Python prompt with the database open and every app's models and the repositories imported."""
    state = _state(ctx)
    names = namespace(state.existing_db(), state.models_of_every_app(), platform.REPOSITORIES,
                      extra={"orm_kit": sys.modules["orm_kit"], "transaction": transaction, "on_commit": on_commit})
    interact(names, banner(names, redact_url(state.url)), interface=interface, command=command)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("client_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- CLIENT_ARGS]...")
@uses("database", echo=False)  # the client prints what it runs itself (psql -e, sqlite3 -echo)
@click.pass_context
@library_errors
def dbshell(ctx: click.Context, client_args: tuple[str, ...]) -> None:
    """Open psql or sqlite3 on the database (the password goes through a temporary file, never argv).

    Arguments after -- go to the client, e.g. orm-kit dbshell -- -c 'SELECT 1'.
    """
    ctx.exit(run_client(_state(ctx).url, client_args))
