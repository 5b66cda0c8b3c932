"""``migrate create`` and ``migrate make``: write the next numbered migration file.

    path = create_migration(Path("migrations"), "add slack channel")   # 0003_add_slack_channel.py, a template
    path = make_migration(db, MODELS, "add deployment duration", Path("migrations"))  # None: nothing to do

The migrations are replayed on a scratch database; ``playhouse.schema_diff`` compares that schema with the
models and peewee's ``playhouse.migrations.template`` renders new tables, new and dropped columns and
indexes as runnable code. schema_diff does not see changed types, nullability, defaults, foreign-key
targets or ``on_delete``, or CHECK constraints, so the same snapshot comparison ``migrate check`` uses finds
those: a nullability change becomes ``add_not_null`` / ``drop_not_null`` code, everything else a
``# TODO:`` line that says what to write. The file always needs a human read before it is applied.

The code calls the migrator, and on PostgreSQL the migrator runs the safe forms
(:mod:`orm_kit.migrate.safe`): a new NOT NULL column with a default is one catalog-only ``ADD COLUMN``,
its index is built ``CONCURRENTLY`` after the commit, ``add_not_null`` goes through a validated CHECK.
``orm-kit migrate sql`` shows exactly what will run; ``orm-kit migrate lint`` judges it against the live
table sizes.

With several apps (:mod:`orm_kit.migrate.apps`), every app's migrations are replayed in the runner's
order, and only the tables of the app the file is for (declared by its models, or created by its
migrations) are compared: ``make`` writes that app's changes only, into its folder, and the file
declares ``depends_on`` the head of every other app its models point at, the schema it was generated
against:

    path = make_migration(db, apps, "add feature flags", app="flags")   # flags/migrations/0001_add_....py
"""

from __future__ import annotations

import datetime
import importlib
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import peewee
from playhouse.migrations import template
from playhouse.schema_diff import diff_models

from orm_kit._shown import shown
from orm_kit.dialect import unwrap
from orm_kit.errors import MigrationError, MigrationRefusedError
from orm_kit.fields import UUIDField
from orm_kit.migrate.apps import AppMigrations, Graph, heads, referenced_apps
from orm_kit.migrate.drift import accept_python_defaults, apps_of, compare, owners, replay_owning
from orm_kit.migrate.files import MigrationFile, discover
from orm_kit.migrate.scratch import models_facts, scratch_database
from orm_kit.migrate.snapshot import Facts, snapshot

__all__ = ["create_migration", "make_migration", "render_migration"]

_TEMPLATE = '''"""{title}."""

import peewee  # noqa: F401  (frozen history: declare what you need here, never import today's models)


def up(migrator, db):
    # migrator.migrate(migrator.add_column("service", "slack_channel", peewee.CharField(max_length=80, null=True)))
    pass


def down(migrator, db):
    # migrator.migrate(migrator.drop_column("service", "slack_channel"))
    pass
'''


_MAX_SLUG = 100


def create_migration(target: Path | Sequence[AppMigrations], name: str, body: str | None = None, *,
                     app: str | None = None) -> Path:
    """Write the next numbered migration file (a template, or ``body``); return its path.

    ``target``: a folder, or apps: then the file goes into ``app``'s folder (default: the last app's) and
    declares ``depends_on`` the head of every other app whose tables its models point at.
    """
    if not isinstance(name, str):
        raise MigrationError(f"migration name {shown(name)} is not text (try: add_service_slack_channel)")
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not slug:
        raise MigrationError(f"migration name {shown(name)} has no letters or digits (try: add_service_slack_channel)")
    if len(slug) > _MAX_SLUG:  # a file name past 255 bytes is an OSError; a name this long is a sentence
        raise MigrationError(f"migration name {shown(name)} makes a file name of {len(slug)} characters; keep it "
                             f"to {_MAX_SLUG} (try: add_service_slack_channel)")
    depends_on: list[tuple[str, str]] = []
    if isinstance(target, str | Path):
        directory = Path(target)
    else:
        apps = apps_of(target, None)
        chosen = _app(apps, app)
        directory = chosen.directory
        depends_on = heads(_files(apps), referenced_apps(apps, chosen))
    directory.mkdir(parents=True, exist_ok=True)
    number = max((f.number for f in discover(directory)), default=0) + 1
    path = directory / f"{number:04d}_{slug}.py"
    text = body if body is not None else _TEMPLATE.format(title=name.strip().capitalize())
    path.write_text(_declare(text, depends_on))
    return path


def make_migration(db: peewee.Database, models: Sequence[type[peewee.Model]] | Sequence[AppMigrations], name: str,
                   directory: Path | None = None, *, app: str | None = None) -> Path | None:
    """Write ``NNNN_name.py`` for the difference between the models and the migrations; None when there is none.

    ``models`` and the migrations in ``directory``; or, with no directory, ``models`` are apps and the file is
    for ``app`` (default: the last one): only its tables are compared, every app's migrations replayed.
    """
    db = unwrap(db) or db
    apps = apps_of(models, directory)
    chosen = _app(apps, app)
    files = _files(apps)
    graph = Graph.build(files, [a.name for a in apps])
    if graph.problems:
        raise MigrationRefusedError("cannot replay the migrations: " + "; ".join(graph.problems))
    created: dict[str, str] = {}
    with scratch_database(db) as scratch:
        replay_owning(scratch, graph.order(), created)
        diff = diff_models(scratch, list(chosen.models))  # type: ignore[no-untyped-call]  # peewee untyped
        head = snapshot(scratch)
    owner = owners(apps, created)
    mine = {table for table, owned_by in owner.items() if owned_by == chosen.name}
    every = [m for a in apps for m in a.models]
    # A database default equal to a model's constant Python default is no change (the safe forms keep one).
    wanted = accept_python_defaults(models_facts(db, every), head, every)
    body = render_migration(diff, _only(wanted, mine), _only(head, mine))
    return None if body is None else create_migration(apps, name, body, app=chosen.name)


def _app(apps: Sequence[AppMigrations], name: str | None) -> AppMigrations:
    for candidate in apps:
        if candidate.name == (name or apps[-1].name):
            return candidate
    raise MigrationError(f"unknown app {name!r} (expected one of: {', '.join(a.name for a in apps)})")


def _files(apps: Sequence[AppMigrations]) -> list[MigrationFile]:
    return [f for a in apps if a.directory.is_dir() for f in discover(a.directory, a.name)]


def _only(facts: Facts, tables: set[str]) -> Facts:
    return {key: value for key, value in facts.items() if key[0] in tables}


def _declare(text: str, depends_on: Sequence[tuple[str, str]]) -> str:
    """``text`` with ``depends_on`` declared just before ``def up`` (nothing when there is nothing to declare)."""
    if not depends_on:
        return text
    entries = ", ".join(f"({app!r}, {name!r})" for app, name in depends_on)
    block = ("# Applied after these migrations of other apps: the schema this one was written against.\n"
             f"depends_on = [{entries}]\n\n\n")
    before, marker, after = text.partition("def up(migrator, db):")
    return before + block + marker + after if marker else text + "\n" + block


def render_migration(diff: object, wanted: Facts, head: Facts) -> str | None:
    """The migration file for a schema_diff result plus what only the snapshots show; None when both are empty."""
    up: list[str] = []
    down: list[str] = []
    todos: list[str] = []
    for (table, subject, attribute), model_value, migrated in compare(wanted, head):
        if subject == "table" or subject.startswith("index ") or model_value is None or migrated is None:
            continue  # schema_diff's ground: tables, added / dropped columns, indexes
        if subject.startswith("column "):
            column = subject.removeprefix("column ")
            if attribute == "null":
                to, back = ("add_not_null", "drop_not_null") if model_value == "NOT NULL" else (
                    "drop_not_null", "add_not_null")
                up.append(f"migrator.migrate(migrator.{to}({table!r}, {column!r}))")
                down.insert(0, f"migrator.migrate(migrator.{back}({table!r}, {column!r}))")
            else:
                how = {"type": "migrator.alter_column_type", "default": "migrator.add_column_default / "
                       "drop_column_default"}.get(attribute, "by hand")
                todos.append(f"{table}.{column}: {attribute} is {migrated} in the migrations, {model_value} in the "
                             f"models ({how})")
        elif subject.startswith("foreign key ") and attribute == "state":
            todos.append(f"{table}.{subject.removeprefix('foreign key ')}: the foreign key is {migrated} in the "
                         f"migrations, {model_value} in the models (ALTER TABLE ... ALTER CONSTRAINT, or VALIDATE "
                         "CONSTRAINT; PostgreSQL only)")
        elif subject.startswith("foreign key "):
            todos.append(f"{table}.{subject.removeprefix('foreign key ')}: references {migrated} in the migrations, "
                         f"{model_value} in the models (drop it, then migrator.add_foreign_key_constraint: NOT VALID "
                         "and validated after the commit on PostgreSQL; a table rebuild on SQLite)")
    for (table, subject, _), model_value, migrated in compare(wanted, head):
        if subject.startswith("check ") and (table, "table", "exists") in head:
            where = "models only" if migrated is None else "migrations only"
            verb = "add" if migrated is None else "drop"
            todos.append(f"{table}: {verb} {subject.removeprefix('check ')} ({where}; migrator.add_constraint / "
                         "drop_constraint: NOT VALID, then validated after the commit on PostgreSQL; a table rebuild "
                         "on SQLite before 3.53)")
        elif subject.startswith("foreign key ") and (model_value is None) != (migrated is None):
            column = subject.removeprefix("foreign key ")
            if (table, f"column {column}", "type") in head and (table, f"column {column}", "type") in wanted:
                todos.append(f"{table}.{column}: foreign key {model_value or migrated} exists only in the "
                             f"{'models' if migrated is None else 'migrations'}")
    if not diff and not up and not todos:
        return None
    text = _index_names_as_models(_template(diff, todos), diff)
    head_part, _, down_part = text.partition("\n\ndef down(migrator, db):\n")
    head_part = _extend(head_part, "def up(migrator, db):\n", up, at_end=True)
    down_part = _extend("def down(migrator, db):\n" + down_part, "def down(migrator, db):\n", down, at_end=False)
    if todos:
        todo_text = "".join(f"# TODO: {todo}\n" for todo in todos)
        head_part = head_part.replace("def up(migrator, db):\n", todo_text + "def up(migrator, db):\n", 1)
    before, _, after = head_part.partition("def up(migrator, db):\n")
    head_part = before.rstrip("\n") + "\n\n\ndef up(migrator, db):\n" + after  # two blank lines, as linters want
    # peewee's template star-imports peewee; say so to linters rather than rewrite its output.
    return "# ruff: noqa: F403, F405, E501\n" + head_part + "\n\n" + down_part


# The callables peewee's template writes itself (playhouse.migrations._COMMON_DEFAULTS): left to it.
_PEEWEE_WRITES: tuple[object, ...] = (datetime.datetime.now, datetime.datetime.utcnow, datetime.date.today, time.time,
                                      time.time_ns, uuid.uuid4, dict, list)


class _Source(str):
    """Python source that peewee's template writes as ``default=<source>`` (it writes a str with ``%r``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _template(diff: object, todos: list[str]) -> str:
    """peewee's template for ``diff``, with what it gets wrong for orm-kit's models put right.

    A callable default (``utcnow``) never reaches the database: in a new table it is left out (the model fills
    it in Python), and on a new column it is written by reference when it can be imported, so existing rows get a
    value (the safe forms compute it once). peewee wrote ``# TODO: default <function utcnow at 0x...> must be
    added by hand`` for both. New tables get their CHECK constraints (and any other constraint a field or the
    model's ``Meta`` declares), which peewee's template leaves out.
    """
    imports: set[str] = set()
    saved: list[tuple[peewee.Field, object]] = []
    created = list(getattr(diff, "create_tables", ()))
    # orm-kit's UUIDField only spells values canonically; its column is peewee's, which the migration declares.
    canonical: list[peewee.Field] = [f for f in _diff_fields(diff) if type(f) is UUIDField]
    try:
        for field in canonical:
            field.__class__ = peewee.UUIDField
        for field in [f for model in created for f in model._meta.sorted_fields]:
            if _python_side(field.default):
                saved.append((field, field.default))
                field.default = None  # a new table's column: the model fills it, the database never sees it
        for field in getattr(diff, "add_columns", ()):
            if not _python_side(field.default):
                continue
            default = field.default
            source = _importable(default)
            saved.append((field, default))
            if source is not None:
                imports.add(_module_of(source))
                field.default = _Source(source)
            else:
                field.default = None
                todos.append(f"{field.model._meta.table_name}.{field.column_name}: its default is computed in Python "
                             f"({getattr(default, '__qualname__', 'a callable')}), which a migration cannot "
                             "import: give add_column a default=... for the rows already there, or allow null")
        text: str = template(diff)  # type: ignore[no-untyped-call]  # peewee untyped
    finally:
        for field, default in saved:
            field.default = default
        for field in canonical:
            field.__class__ = UUIDField
    text = _with_constraints(text, created, todos)
    if imports:
        text = text.replace("from peewee import *\n", "from peewee import *\n" + "".join(
            f"import {module}\n" for module in sorted(imports)), 1)
    return text


def _diff_fields(diff: object) -> list[peewee.Field]:
    """Every field ``diff`` writes: its new tables' (with the keys they refer to) and its new columns."""
    fields = [f for model in getattr(diff, "create_tables", ()) for f in model._meta.sorted_fields]
    fields += list(getattr(diff, "add_columns", ()))
    return fields + [f.rel_field for f in fields if isinstance(f, peewee.ForeignKeyField)]


def _python_side(default: object) -> bool:
    return callable(default) and not any(default == known for known in _PEEWEE_WRITES)


def _importable(function: object) -> str | None:
    """``module.name`` that imports ``function`` again (None for a lambda, a closure, ``__main__``'s)."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found: object = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}.{qualname}" if found is function else None


def _module_of(source: str) -> str:
    """The module of a ``module.qualname`` :func:`_importable` wrote (the longest importable prefix)."""
    parts = source.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        try:
            importlib.import_module(candidate)
        except ImportError:
            continue
        return candidate
    return parts[0]


def _with_constraints(text: str, created: Sequence[type[peewee.Model]], todos: list[str]) -> str:
    """``text`` where each new table's class declares the constraints its model does (CHECKs above all)."""
    for model in created:
        meta = model._meta
        head = f"class {model.__name__}(Model):\n"
        start = text.find(head)
        end = text.find(f"db.create_tables([{model.__name__}])", start)
        if start < 0 or end < 0:
            continue
        block = text[start:end]
        for field in meta.sorted_fields:
            rendered = _constraint_sources(field.constraints or (), f"{meta.table_name}.{field.column_name}", todos)
            if rendered:
                found = re.search(rf"^(\s+{re.escape(field.name)} = \w+\()(.*)\)$", block, re.M)
                if found is not None:
                    arguments = f"{found.group(2)}, " if found.group(2) else ""
                    block = (block[:found.start()] + f"{found.group(1)}{arguments}constraints=[{rendered}])"
                             + block[found.end():])
        rendered = _constraint_sources(meta.constraints or (), str(meta.table_name), todos)
        found = re.search(rf"^(\s+)table_name = {re.escape(repr(meta.table_name))}\n", block, re.M)
        if rendered and found is not None:
            block = block[:found.end()] + f"{found.group(1)}constraints = [{rendered}]\n" + block[found.end():]
        text = text[:start] + block + text[end:]
    return text


def _constraint_sources(nodes: Sequence[object], where: str, todos: list[str]) -> str:
    """``SQL('CHECK (...)'), ...`` for constraint nodes; a TODO for one with bound values (no faithful source)."""
    sources = []
    for node in nodes:
        if isinstance(node, peewee.Node):
            sql, params = peewee.Context().sql(node).query()  # type: ignore[no-untyped-call]  # untyped stubs
        else:
            sql, params = str(node), []
        if params:
            todos.append(f"{where}: constraint {sql} (with values {params!r}) must be added by hand")
            continue
        sources.append(f"SQL({sql!r})")
    return ", ".join(sources)


def _index_names_as_models(text: str, diff: object) -> str:
    """``text`` where each table it creates names its indexes as the model does.

    peewee names a model's indexes after its class (``deploywindow_environment_id``) unless the model says
    ``legacy_table_names = False`` (orm_kit.Model does: ``deploy_window_environment_id``, as the migrator
    names the indexes it adds); its template leaves that out of the classes it writes, and ``check``
    compares index names (a later migration drops an index by name).
    """
    for model in getattr(diff, "create_tables", ()):
        meta = model._meta
        if not meta.legacy_table_names:
            text = re.sub(rf"^( *)table_name = {re.escape(repr(meta.table_name))}\n(?!\1legacy_table_names)",
                          lambda m: f"{m.group(0)}{m.group(1)}legacy_table_names = False\n", text, flags=re.M)
    return text


def _extend(text: str, header: str, lines: list[str], *, at_end: bool) -> str:
    if not lines:
        return text
    before, _, body = text.partition(header)
    extra = "".join(f"    {line}\n" for line in lines)
    if body.strip() == "pass":
        return before + header + extra
    body = body if body.endswith("\n") else body + "\n"
    return before + header + (body + extra if at_end else extra + body)
