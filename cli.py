"""The ``orm-kit`` command: thin click wrappers over library calls.

Each command parses its options, calls one library function and prints what it returns. Library errors
(:class:`orm_kit.OrmKitError`) become one line on stderr and exit code 1; bad usage exits 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import peewee

from orm_kit.db import open_database, redact_url, resolve_url
from orm_kit.errors import OrmKitError
from orm_kit.models import MODELS
from orm_kit.runner import migrate_up

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
