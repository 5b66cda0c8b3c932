"""Apps: several folders of migrations in one database, numbered independently, ordered by what they declare.

    apps = [AppMigrations("platform", platform_folder, PLATFORM_MODELS),
            AppMigrations("flags", Path("migrations"), (FeatureFlag,))]
    Runner(db, apps).up()      # ['platform:0001_initial', ..., 'flags:0001_feature_flags']
    check(db, apps).ok         # models of every app vs the migrations of every app vs the live database

Each app has its own folder of ``NNNN_slug.py`` files, numbered on its own: the platform's next
``0004`` never collides with an app's ``0004``, because the history records every row under its app
(:mod:`orm_kit.migrate.history`). Within an app, files run in number order. Across apps, a migration
declares what it needs at module level, as a literal (a number or a full name):

    depends_on = [("platform", "0003")]          # or ["platform:0003_deployment_history_indexes"]

``migrate make`` writes that line for you: the head of every other app, the schema it generated against.
The declaration is read from the file's syntax tree, never by running it. ``up`` applies every pending
migration of every app in one order that honours the declarations and each app's numbering; among
migrations that could go next, the earlier app (in the order the apps are given) and the lower
number go first. An unknown app or migration named in ``depends_on``, or a cycle, is a problem that
stops the runner before anything runs, naming the files.

Where a command takes one migration, ``app:NNNN`` names it in another app than the default one; the
default app is the last one given (a project's own; the platform when it is the only one).
"""

from __future__ import annotations

import ast
import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import peewee

from orm_kit._shown import shown
from orm_kit.errors import ConfigurationError, MigrationError
from orm_kit.migrate.files import DEFAULT_APP, MigrationFile, target_number

__all__ = [
    "APP_NAME",
    "DEFAULT_APP",
    "AppMigrations",
    "Graph",
    "as_apps",
    "declared_dependencies",
    "label",
    "split_target",
]

#: What an app may be called: it keys history rows and prefixes targets (``flags:0002``).
APP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

Key = tuple[str, str]  # (app, migration name)


@dataclass(frozen=True)
class AppMigrations:
    """One app's migrations folder and the models its migrations must produce."""

    name: str
    directory: Path
    models: tuple[type[peewee.Model], ...] = ()

    def __post_init__(self) -> None:
        if not APP_NAME.match(self.name):
            raise ConfigurationError(
                f"app name {self.name!r} is not usable: expected lowercase letters, digits, '_' or '-', starting "
                "with a letter, at most 64 characters (e.g. feature_flags)")


def as_apps(source: Path | Sequence[AppMigrations], models: Iterable[type[peewee.Model]] = ()
            ) -> tuple[AppMigrations, ...]:
    """``source`` as apps: a folder is the one app :data:`DEFAULT_APP` (with ``models``); names must differ."""
    if isinstance(source, str | Path):
        return (AppMigrations(DEFAULT_APP, Path(source), tuple(models)),)
    apps = tuple(source)
    if not apps:
        raise ConfigurationError("no apps given: name at least one folder of migrations")
    names = [app.name for app in apps]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigurationError(f"app {twice[0]!r} is given twice; every app needs a name of its own")
    return apps


def label(app: str, name: str, qualified: bool) -> str:
    """How a migration is named in output: ``app:name`` when several apps share the database, else ``name``."""
    return f"{app}:{name}" if qualified else name


def split_target(target: str, default_app: str) -> tuple[str, str]:
    """``"flags:0002"`` -> ``("flags", "0002")``; a target without an app is in ``default_app``."""
    if not isinstance(target, str):
        raise MigrationError(f"a migration target is text, NNNN or APP:NNNN (got {shown(target)})")
    app, colon, rest = target.partition(":")
    return (app, rest) if colon else (default_app, target)


def declared_dependencies(f: MigrationFile) -> list[Key]:
    """What ``f`` declares in ``depends_on``, as (app, target) pairs; raises MigrationError on a malformed one."""
    source = f.source
    if b"depends_on" not in source:
        return []  # most files declare nothing: no need to parse them (a third of reading a plan, measured)
    try:
        tree = ast.parse(source, str(f.path))
    except (SyntaxError, ValueError) as exc:
        raise MigrationError(f"{f.path.name} cannot be parsed ({exc}): fix the file") from None
    found: list[Key] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if value is None or not any(isinstance(t, ast.Name) and t.id == "depends_on" for t in targets):
            continue
        expected = ('expected a literal list like depends_on = [("platform", "0003")] (an app and a migration '
                    'number or name per entry, or "platform:0003")')
        try:
            entries = ast.literal_eval(value)
        except ValueError:
            raise MigrationError(f"{f.path.name}: depends_on is not a literal; {expected}") from None
        if not isinstance(entries, list | tuple):
            raise MigrationError(f"{f.path.name}: depends_on is {entries!r}; {expected}")
        found = []
        for entry in entries:
            if isinstance(entry, str) and ":" in entry:
                entry = tuple(entry.split(":", 1))
            if not (isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(p, str) and p for p in entry)):
                raise MigrationError(f"{f.path.name}: depends_on entry {entry!r} is not an app and a migration; "
                                     f"{expected}")
            found.append((entry[0], entry[1]))
    return found


def _resolve_in(files: Sequence[MigrationFile], target: str) -> MigrationFile | None:
    for f in files:
        if target == f.name or target_number(target) == f.number:
            return f
    return None


@dataclass
class Graph:
    """Which migration must run before which: each app's numbering, and every declared ``depends_on``."""

    files: tuple[MigrationFile, ...]
    rank: dict[str, int]
    needs: dict[Key, list[Key]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, files: Sequence[MigrationFile], apps: Sequence[str]) -> Graph:
        """The graph of ``files`` (of the apps named in ``apps``, in that order of precedence)."""
        rank = {app: i for i, app in enumerate(apps)}
        graph = cls(tuple(sorted(files, key=lambda f: (rank.get(f.app, len(rank)), f.number, f.name))), rank)
        by_app: dict[str, list[MigrationFile]] = {app: [] for app in apps}
        for f in graph.files:
            by_app.setdefault(f.app, []).append(f)
        for app_files in by_app.values():
            previous: MigrationFile | None = None
            for f in app_files:
                graph.needs[(f.app, f.name)] = [] if previous is None else [(previous.app, previous.name)]
                previous = f
        for f in graph.files:
            try:
                declared = declared_dependencies(f)
            except MigrationError as exc:
                graph.problems.append(f"{exc} (nothing ran)")
                continue
            for app, target in declared:
                where = f"{f.app} {f.path.name}" if len(apps) > 1 else f.path.name
                if app not in by_app:
                    graph.problems.append(
                        f"{where} depends on app {app!r}, which is not configured here (apps: {', '.join(apps)}): "
                        "configure it, or correct depends_on")
                    continue
                found = _resolve_in(by_app[app], target)
                if found is None:
                    names = ", ".join(g.name for g in by_app[app]) or "none"
                    graph.problems.append(
                        f"{where} depends on {app} {target!r}, which {app} does not have (its migrations: {names}): "
                        "correct depends_on, or bring the missing file back")
                    continue
                graph.needs[(f.app, f.name)].append((found.app, found.name))
        cycle = graph._cycle()
        if cycle:
            shown = " -> ".join(f"{app}:{name}.py" for app, name in cycle)
            graph.problems.append(f"migrations depend on each other in a cycle: {shown} (a migration can only "
                                  "depend on ones that run before it: correct depends_on)")
        return graph

    def _cycle(self) -> list[Key]:
        state: dict[Key, int] = {}
        path: list[Key] = []

        def visit(key: Key) -> list[Key]:
            state[key] = 1
            path.append(key)
            for need in self.needs.get(key, []):
                if state.get(need) == 1:
                    return [*path[path.index(need):], need]
                if need not in state:
                    found = visit(need)
                    if found:
                        return found
            path.pop()
            state[key] = 2
            return []

        for f in self.files:
            key = (f.app, f.name)
            if key not in state:
                found = visit(key)
                if found:
                    return found
        return []

    def order(self, done: Iterable[Key] = (), only: Iterable[Key] | None = None) -> list[MigrationFile]:
        """The files not ``done`` (or only those in ``only``), each after what it needs; ties: app order, number."""
        finished = set(done)
        wanted = {(f.app, f.name) for f in self.files} if only is None else set(only)
        todo = {(f.app, f.name): f for f in self.files if (f.app, f.name) in wanted and (f.app, f.name) not in finished}
        position = {(f.app, f.name): i for i, f in enumerate(self.files)}
        waiting = {key: {n for n in self.needs.get(key, []) if n in todo} for key in todo}
        unblocks: dict[Key, list[Key]] = {}
        for key, needs in waiting.items():
            for need in needs:
                unblocks.setdefault(need, []).append(key)
        ready = [position[key] for key, needs in waiting.items() if not needs]
        heapq.heapify(ready)
        ordered: list[MigrationFile] = []
        while ready:
            f = self.files[heapq.heappop(ready)]
            ordered.append(f)
            for other in unblocks.get((f.app, f.name), []):
                waiting[other].discard((f.app, f.name))
                if not waiting[other]:
                    heapq.heappush(ready, position[other])
        return ordered  # a cycle leaves some out; it is reported as a problem, so nothing runs then

    def closure(self, keys: Iterable[Key]) -> set[Key]:
        """``keys`` and everything they need, transitively."""
        found: set[Key] = set()
        stack = list(keys)
        while stack:
            key = stack.pop()
            if key not in found:
                found.add(key)
                stack.extend(self.needs.get(key, []))
        return found

    def dependents(self, keys: Iterable[Key]) -> dict[Key, Key]:
        """Migrations of *other apps* that declare a need of one of ``keys``: ``{dependent: what it needs}``."""
        wanted = set(keys)
        found: dict[Key, Key] = {}
        for key, needs in self.needs.items():
            for need in needs:
                if need in wanted and need[0] != key[0]:
                    found[key] = need
        return found


def heads(files: Iterable[MigrationFile], apps: Sequence[str]) -> list[Key]:
    """The last migration (by number) of each of ``apps`` that has one: what a new migration builds on."""
    last: dict[str, MigrationFile] = {}
    for f in files:
        if f.app in apps and (f.app not in last or (f.number, f.name) > (last[f.app].number, last[f.app].name)):
            last[f.app] = f
    return [(last[app].app, last[app].name) for app in apps if app in last]


def referenced_apps(apps: Sequence[AppMigrations], app: AppMigrations) -> list[str]:
    """The other apps whose tables ``app``'s models point at with foreign keys: what its migrations build on."""
    owner = {m._meta.table_name: other.name for other in apps for m in other.models}
    found: list[str] = []
    for model in app.models:
        for fk in model._meta.refs:
            other = owner.get(fk.rel_model._meta.table_name)
            if other is not None and other != app.name and other not in found:
                found.append(other)
    return found


def by_app(files: Iterable[MigrationFile]) -> Mapping[str, list[MigrationFile]]:
    """``files`` grouped by app, in the order given."""
    grouped: dict[str, list[MigrationFile]] = {}
    for f in files:
        grouped.setdefault(f.app, []).append(f)
    return grouped
