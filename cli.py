"""The ``orm-kit`` command: thin click wrappers over library calls.

Each command parses its options, calls one library function and prints what it returns. Library errors
(:class:`orm_kit.OrmKitError`) become one line on stderr and exit code 1; bad usage exits 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar
from urllib.parse import urlsplit

import click
import peewee

from orm_kit import seeding
from orm_kit.codegen import create_migration, make_migration
from orm_kit.db import open_database, redact_url, resolve_url, scrub
from orm_kit.drift import baseline as adopt
from orm_kit.drift import check, verify
from orm_kit.errors import OrmKitError, first_line
from orm_kit.migration_lock import DEFAULT_LOCK_TIMEOUT
from orm_kit.models import MODELS
from orm_kit.preview import preview_sql
from orm_kit.runner import Runner, Status, default_migrations_dir, format_utc
from orm_kit.seed_generator import generate, remove_generated
from orm_kit.seed_registry import REGISTRY, default_seed_dir

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What the group callback resolves for every command: the URL; the database is opened on demand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: peewee.Database | None = None

    @property
    def db(self) -> peewee.Database:
        if self._db is None:
            self._db = open_database(self.url)
            self._db.bind(MODELS)
        return self._db

    def close(self) -> None:
        if self._db is not None and not self._db.is_closed():
            self._db.close()


def library_errors(command: F) -> F:
    """Turn an :class:`OrmKitError` (and a raw database error) into one line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OrmKitError as exc:
            raise click.ClickException(str(exc)) from None
        except peewee.DatabaseError as exc:
            state = click.get_current_context().find_object(Context)
            where = redact_url(state.url) if state is not None else "the database"
            first = first_line(exc, typed=False)
            if state is not None:
                first = scrub(first, state.url)  # a driver message can echo its connection string
            raise click.ClickException(f"database error on {where}: {first}") from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("--database", "database", metavar="URL", default=None,
              help="Database URL (default: $ORM_KIT_DATABASE_URL, $DATABASE_URL, sqlite:///orm_kit.db).")
@click.version_option(package_name="orm-kit")
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """orm-kit: migrate and seed the deployment platform's database."""
    url = resolve_url(database)
    if _in_memory_sqlite(url):
        # Each command opens its own connection: an in-memory database would vanish when it ends.
        raise click.UsageError(f"{url!r} is an in-memory SQLite database, which disappears when the command "
                               "ends; name a file instead, e.g. sqlite:///orm_kit.db")
    state = Context(url)
    ctx.obj = state
    ctx.call_on_close(state.close)


@main.group(invoke_without_command=True)
@click.option("--migrations", "migrations_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of NNNN_name.py migrations (default: the ones shipped with orm-kit).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=DEFAULT_LOCK_TIMEOUT, show_default=True,
              help="Seconds to wait for another runner's migration lock before failing.")
@click.option("--allow-out-of-order", is_flag=True, help="Apply a pending migration numbered below an applied one.")
@click.pass_context
@library_errors
def migrate(ctx: click.Context, migrations_dir: Path | None, lock_timeout: float, allow_out_of_order: bool) -> None:
    """Apply pending migrations (the same as `migrate up`)."""
    ctx.meta["migrations_dir"] = migrations_dir
    ctx.meta["runner_options"] = {"lock_timeout": lock_timeout, "allow_out_of_order": allow_out_of_order}
    if ctx.invoked_subcommand is None:
        ctx.invoke(up)


def _in_memory_sqlite(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "sqlite" and not parts.netloc and parts.path.lstrip("/") in ("", ":memory:")


def _state(ctx: click.Context) -> Context:
    state = ctx.find_object(Context)
    assert state is not None
    return state


def _existing_db(ctx: click.Context) -> peewee.Database:
    """The database, refusing a SQLite file that is not there: only `migrate up` may create one."""
    open_database(_state(ctx).url, connect=False, must_exist=True)
    return _state(ctx).db


def _runner(ctx: click.Context, *, may_create: bool = False) -> Runner:
    db = _state(ctx).db if may_create else _existing_db(ctx)
    return Runner(db, ctx.meta.get("migrations_dir"), **ctx.meta.get("runner_options", {}))


def _target_dir(ctx: click.Context) -> Path:
    """Where a new migration goes: only ever a folder the user names, never inside the installed package."""
    folder: Path | None = ctx.meta.get("migrations_dir")
    if folder is None:
        raise click.UsageError(
            "name the folder for the new file: orm-kit migrate --migrations DIR create|make NAME "
            f"(the default, {default_migrations_dir()}, is the installed package's own history)")
    return folder


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


@migrate.command()
@click.argument("target", required=False)
@click.pass_context
@library_errors
def up(ctx: click.Context, target: str | None) -> None:
    """Apply pending migrations, or those up to TARGET."""
    applied = _runner(ctx, may_create=True).up(target)
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("nothing to apply: the database is up to date")


@migrate.command()
@click.argument("target", required=False)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Revert the last N migrations.")
@click.pass_context
@library_errors
def down(ctx: click.Context, target: str | None, steps: int | None) -> None:
    """Revert the last migration, the last --steps N, or every one applied after TARGET."""
    if target is not None and steps is not None:
        raise click.UsageError("pass either TARGET or --steps, not both")
    reverted = _runner(ctx).down(steps=steps, target=target)
    for name in reverted:
        click.echo(f"reverted {name}")
    if not reverted:
        click.echo("nothing to revert")


def _status_lines(status: Status) -> list[str]:
    marks = {"applied": "x", "baseline": "b", "pending": " ", "late": " "}
    lines = []
    for m in status.migrations:
        when = format_utc(m.applied_at) if m.applied_at else ""
        took = f"{m.duration_ms} ms" if m.duration_ms is not None else ""
        digest = (m.recorded_checksum or m.checksum or "")[:12]
        lines.append(f"[{marks.get(m.state, '!')}] {m.name:<40} {m.state:<10} {when:<24} {took:>9}  {digest}".rstrip())
    lines += [f"problem: {problem}" for problem in status.problems]
    if status.pending:
        lines.append(f"pending: {', '.join(status.pending)} (run `orm-kit migrate up`)")
    return lines


@migrate.command()
@json_option
@click.pass_context
@library_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Every migration's state; exits 1 when anything is pending or wrong (to gate a deploy)."""
    result = _runner(ctx).status()
    _finish(ctx, result, as_json, lambda: _status_lines(result) or ["no migrations"])


@migrate.command()
@click.argument("name")
@click.pass_context
@library_errors
def create(ctx: click.Context, name: str) -> None:
    """Write the next numbered migration file from a template (into --migrations DIR)."""
    click.echo(f"created {create_migration(_target_dir(ctx), name)}")


@migrate.command()
@click.argument("name")
@click.pass_context
@library_errors
def make(ctx: click.Context, name: str) -> None:
    """Generate a migration from what the models have and the migrations do not."""
    # Only the kind of database matters (the migrations are replayed on a scratch one): nothing is created.
    db = open_database(_state(ctx).url, connect=False)
    path = make_migration(db, MODELS, name, _target_dir(ctx))
    click.echo(f"created {path} (read it, and finish every TODO, before applying it)" if path
               else "nothing to generate: the migrations already produce the models' schema")


@migrate.command("check")
@json_option
@click.pass_context
@library_errors
def check_command(ctx: click.Context, as_json: bool) -> None:
    """Three-way drift: models vs migrations vs the live database; exits 1 on any difference."""
    report = check(_existing_db(ctx), MODELS, ctx.meta.get("migrations_dir"))
    _finish(ctx, report, as_json, lambda: [f"problem: {problem}" for problem in report.problems] + [
        f"drift: {finding}" for finding in report.findings] + (
        [f"pending: {', '.join(report.pending)} (run `orm-kit migrate up`)"] if report.pending else []) + (
        ["no drift: models, migrations and the database agree"] if report.ok else []))


@migrate.command()
@click.argument("target", required=False)
@click.option("--down", "down_", is_flag=True, help="The SQL `migrate down` would run instead.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="With --down: the last N migrations.")
@click.pass_context
@library_errors
def sql(ctx: click.Context, target: str | None, down_: bool, steps: int | None) -> None:
    """Print the SQL `up` (or `down`) would run, captured on a scratch database; runs nothing."""
    plans = preview_sql(_existing_db(ctx), ctx.meta.get("migrations_dir"), target, down=down_, steps=steps,
                        allow_out_of_order=ctx.meta["runner_options"]["allow_out_of_order"])
    for plan in plans:
        click.echo(f"-- {plan.name} ({plan.direction})")
        for statement in plan.statements:
            click.echo(statement.rstrip().rstrip(";") + ";")
    if not plans:
        click.echo("-- nothing to run")


@migrate.command("verify")
@json_option
@click.pass_context
@library_errors
def verify_command(ctx: click.Context, as_json: bool) -> None:
    """On a scratch database: every migration up, down, up; the result must equal the models."""
    report = verify(_existing_db(ctx), MODELS, ctx.meta.get("migrations_dir"))
    _finish(ctx, report, as_json, lambda: [f"verified on {report.on}"] + [
        line for step in report.steps
        for line in [f"{'FAIL' if step.problems else 'ok'} {step.name}", *(f"  {p}" for p in step.problems)]
    ] + [f"drift: {line}" for line in report.drift])


@migrate.command()
@click.argument("version")
@click.pass_context
@library_errors
def baseline(ctx: click.Context, version: str) -> None:
    """Adopt an existing database whose schema is what the migrations up to VERSION produce."""
    for name in adopt(_runner(ctx), version):
        click.echo(f"recorded {name} (baseline)")


@migrate.command()
@click.pass_context
@library_errors
def repair(ctx: click.Context) -> None:
    """Accept edited migrations' checksums and clear failed `atomic = False` runs."""
    report = _runner(ctx).repair()
    for name in report.rechecksummed:
        click.echo(f"re-recorded the checksum of {name}")
    for name in report.cleared:
        click.echo(f"cleared the unfinished run of {name}")
    for name in report.missing:
        click.echo(f"cannot repair {name}: its file is missing (restore it)")
    if not (report.rechecksummed or report.cleared or report.missing):
        click.echo("nothing to repair")


# --- seed ---------------------------------------------------------------------------------------------


def _seed_dir(ctx: click.Context) -> Path:
    folder: Path | None = ctx.meta.get("seed_dir")
    return folder or default_seed_dir()


# `orm-kit seed` loads when given no subcommand, so it takes `seed load`'s options too: declared once.
_set_option = click.option("--set", "sets", metavar="NAME", multiple=True, help="Load only this set (repeatable).")
_dry_run_option = click.option("--dry-run", is_flag=True,
                               help="Report what would be inserted and updated; write nothing.")


def _load_options(command: F) -> F:
    return _set_option(_dry_run_option(command))


@main.group(invoke_without_command=True)
@click.option("--seeds", "seed_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of seed sets (default: the ones shipped with orm-kit).")
@_load_options
@click.pass_context
@library_errors
def seed(ctx: click.Context, seed_dir: Path | None, sets: tuple[str, ...], dry_run: bool) -> None:
    """Load seed sets into a migrated database (the same as `seed load`)."""
    ctx.meta["seed_dir"] = seed_dir
    if ctx.invoked_subcommand is not None and (sets or dry_run):
        raise click.UsageError("--set and --dry-run go with `orm-kit seed` or `orm-kit seed load`")
    if ctx.invoked_subcommand is None:
        ctx.invoke(load, sets=sets, dry_run=dry_run)


@seed.command("load")
@_load_options
@click.pass_context
@library_errors
def load(ctx: click.Context, sets: tuple[str, ...], dry_run: bool) -> None:
    """Insert and update seed rows, matched by natural key, in one transaction."""
    result = seeding.load(_existing_db(ctx), REGISTRY, _seed_dir(ctx), list(sets) or None, dry_run=dry_run)
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
@click.option("--set", "only", metavar="NAME", multiple=True,
              help="Only this set (repeatable): gate a deploy that loads some sets on just those.")
@click.pass_context
@library_errors
def seed_status(ctx: click.Context, only: tuple[str, ...]) -> None:
    """Show which sets are loaded and whether their files changed since; exit 1 unless all shown are loaded."""
    sets = seeding.status(_existing_db(ctx), REGISTRY, _seed_dir(ctx), list(only) or None)
    for item in sets:
        when = f"  {item.loaded_at:%Y-%m-%d %H:%M:%S} UTC" if item.loaded_at else ""
        click.echo(f"{item.name:<20} {item.state:<13} {item.rows:>6} rows{when}")
    if any(item.state != "loaded" for item in sets):
        ctx.exit(1)


@seed.command("remove")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.pass_context
@library_errors
def seed_remove(ctx: click.Context, name: str, dry_run: bool) -> None:
    """Delete the rows set NAME loaded (refused if other rows still refer to them)."""
    result = seeding.remove(_existing_db(ctx), REGISTRY, name, dry_run=dry_run)
    counts = ", ".join(f"{count} {table}" for table, count in result.deleted.items()) or "no rows"
    click.echo(f"{'would remove' if dry_run else 'removed'} set {name}: {counts}")
    if result.gone:
        gone = ", ".join(f"{count} {table}" for table, count in result.gone.items())
        click.echo(f"note: {gone} row(s) it inserted were already deleted or their ids reused; left alone")


@seed.command("generate")
@click.option("--deployments", "count", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="How many deployments to generate.")
@click.option("--random-seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="The same seed gives the same history.")
@click.option("--services", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many synthetic services deploy.")
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True, help="How long the history spans.")
@click.pass_context
@library_errors
def seed_generate(ctx: click.Context, count: int, random_seed: int, services: int, days: int) -> None:
    """Insert a deterministic synthetic history: deployments with their releases and incidents."""
    db = _existing_db(ctx)
    started = time.perf_counter()
    with _progress(count) as report:
        result = generate(db, deployments=count, random_seed=random_seed, services=services, days=days,
                          progress=report)
    seconds = time.perf_counter() - started
    noun = "incident" if result.incidents == 1 else "incidents"
    click.echo(f"generated {result.deployments} deployments, {result.releases} releases and {result.incidents} "
               f"{noun} (random seed {random_seed}) in {seconds:.1f} s, {result.rows / seconds:,.0f} rows/s")


@seed.command("remove-generated")
@click.argument("random_seed", type=click.IntRange(min=0))
@click.pass_context
@library_errors
def seed_remove_generated(ctx: click.Context, random_seed: int) -> None:
    """Delete the synthetic history `seed generate --random-seed RANDOM_SEED` made."""
    result = remove_generated(_existing_db(ctx), random_seed)
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


# --- group options also accepted after the subcommand ---------------------------------------------------
# `orm-kit migrate --lock-timeout 10 up` and `orm-kit migrate up --lock-timeout 10` mean the same; the
# subcommand's value wins, and its --help lists them.


def _store_meta(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.meta[key] = value

    return store


def _store_runner_option(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.meta.setdefault("runner_options", {})[key] = value

    return store


def _migrate_options() -> list[click.Parameter]:
    return [
        click.Option(["--migrations"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_store_meta("migrations_dir"),
                     help="Folder of NNNN_name.py migrations (as after `migrate`)."),
        click.Option(["--lock-timeout"], type=click.FloatRange(min=0), default=None, expose_value=False,
                     callback=_store_runner_option("lock_timeout"),
                     help="Seconds to wait for another runner's lock (as after `migrate`)."),
        click.Option(["--allow-out-of-order"], is_flag=True, default=False, expose_value=False,
                     callback=_store_runner_option("allow_out_of_order"),
                     help="Apply a pending migration numbered below an applied one (as after `migrate`)."),
    ]


def _seed_options() -> list[click.Parameter]:
    return [click.Option(["--seeds"], type=click.Path(file_okay=False, path_type=Path), default=None,
                         expose_value=False, callback=_store_meta("seed_dir"),
                         help="Folder of seed sets (as after `seed`).")]


for _group, _options in ((migrate, _migrate_options), (seed, _seed_options)):
    for _command in _group.commands.values():
        _command.params.extend(_options())
