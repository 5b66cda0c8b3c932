"""The ``orm-kit`` command: thin click wrappers over library calls.

Each command parses its options, calls one library function and prints what it returns. Library errors
(:class:`orm_kit.OrmKitError`) become one line on stderr and exit code 1; bad usage exits 2.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import peewee

from orm_kit import seeding
from orm_kit.db import open_database, redact_url, resolve_url
from orm_kit.errors import OrmKitError
from orm_kit.models import MODELS
from orm_kit.runner import migrate_up
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
            url = click.get_current_context().find_object(Context)
            where = redact_url(url.url) if url is not None else "the database"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(f"database error on {where}: {first}") from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("--database", "database", metavar="URL", default=None,
              help="Database URL (default: $ORM_KIT_DATABASE_URL, $DATABASE_URL, sqlite:///orm_kit.db).")
@click.version_option(package_name="orm-kit")
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """orm-kit: migrate and seed the deployment platform's database."""
    state = Context(resolve_url(database))
    ctx.obj = state
    ctx.call_on_close(state.close)


@main.group(invoke_without_command=True)
@click.option("--migrations", "migrations_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of NNNN_name.py migrations (default: the ones shipped with orm-kit).")
@click.pass_context
@library_errors
def migrate(ctx: click.Context, migrations_dir: Path | None) -> None:
    """Apply pending migrations (the same as `migrate up`)."""
    ctx.meta["migrations_dir"] = migrations_dir
    if ctx.invoked_subcommand is None:
        ctx.invoke(up)


@migrate.command()
@click.argument("target", required=False)
@click.pass_context
@library_errors
def up(ctx: click.Context, target: str | None) -> None:
    """Apply pending migrations, or those up to TARGET."""
    state = ctx.find_object(Context)
    assert state is not None
    applied = migrate_up(state.db, ctx.meta.get("migrations_dir"), target)
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("nothing to apply: the database is up to date")


# --- seed ---------------------------------------------------------------------------------------------


def _seed_dir(ctx: click.Context) -> Path:
    folder: Path | None = ctx.meta.get("seed_dir")
    return folder or default_seed_dir()


@main.group(invoke_without_command=True)
@click.option("--seeds", "seed_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of seed sets (default: the ones shipped with orm-kit).")
@click.option("--set", "sets", metavar="NAME", multiple=True, help="Load only this set (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would be inserted and updated; write nothing.")
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
@click.option("--set", "sets", metavar="NAME", multiple=True, help="Load only this set (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would be inserted and updated; write nothing.")
@click.pass_context
@library_errors
def load(ctx: click.Context, sets: tuple[str, ...], dry_run: bool) -> None:
    """Insert and update seed rows, matched by natural key, in one transaction."""
    state = ctx.find_object(Context)
    assert state is not None
    result = seeding.load(state.db, REGISTRY, _seed_dir(ctx), list(sets) or None, dry_run=dry_run)
    for change in result.changes:
        if change.action == "update" or dry_run:
            fields = f": {', '.join(change.fields)}" if change.action == "update" else ""
            click.echo(f"{'would ' if dry_run else ''}{change.action} {change.table} {change.key}{fields}")
    for name, count in result.stale.items():
        click.echo(f"note: {count} row(s) loaded earlier by set {name!r} are no longer in its files "
                   f"(`orm-kit seed remove {name}` and load again to drop them)")
    verb = "dry run, nothing written" if dry_run else "seeded"
    click.echo(f"{verb} {', '.join(result.sets)}: {result.inserted} inserted, {result.updated} updated, "
               f"{result.unchanged} unchanged")


@seed.command("status")
@click.pass_context
@library_errors
def seed_status(ctx: click.Context) -> None:
    """Show which sets are loaded and whether their files changed since; exit 1 unless all are loaded."""
    state = ctx.find_object(Context)
    assert state is not None
    sets = seeding.status(state.db, _seed_dir(ctx))
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
    state = ctx.find_object(Context)
    assert state is not None
    result = seeding.remove(state.db, REGISTRY, name, dry_run=dry_run)
    counts = ", ".join(f"{count} {table}" for table, count in result.deleted.items()) or "no rows"
    click.echo(f"{'would remove' if dry_run else 'removed'} set {name}: {counts}")


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
    state = ctx.find_object(Context)
    assert state is not None
    started = time.perf_counter()
    with _progress(count) as report:
        result = generate(state.db, deployments=count, random_seed=random_seed, services=services, days=days,
                          progress=report)
    seconds = time.perf_counter() - started
    click.echo(f"generated {result.deployments} deployments, {result.releases} releases and {result.incidents} "
               f"incidents (random seed {random_seed}) in {seconds:.1f} s, {result.rows / seconds:,.0f} rows/s")


@seed.command("remove-generated")
@click.argument("random_seed", type=click.IntRange(min=0))
@click.pass_context
@library_errors
def seed_remove_generated(ctx: click.Context, random_seed: int) -> None:
    """Delete the synthetic history `seed generate --random-seed RANDOM_SEED` made."""
    state = ctx.find_object(Context)
    assert state is not None
    result = remove_generated(state.db, random_seed)
    click.echo(f"removed {result.deployments} deployments, {result.releases} releases, {result.incidents} "
               f"incidents and {result.services} services (random seed {random_seed})")


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal; plain lines (every tenth) otherwise."""
    if sys.stdout.isatty():
        with click.progressbar(length=total, label="deployments") as bar:
            yield lambda done, _total: bar.update(done - bar.pos)
        return
    shown = [0]

    def plain(done: int, all_: int) -> None:
        tenth = done * 10 // max(all_, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            click.echo(f"{done}/{all_} deployments")

    yield plain
