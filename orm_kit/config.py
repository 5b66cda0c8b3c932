"""A project's own configuration: ``[tool.orm-kit]`` in ``pyproject.toml``, found in the working folder or a parent.

    # pyproject.toml of a service that adds its own tables
    [tool.orm-kit]
    app = "flags"                                 # its name in the history and in seed set names
    models = ["flags.models"]                     # modules whose models are the app's tables
    migrations = "migrations"                     # its numbered migrations (relative to this file)
    seeds = "seed_data"                           # its seed sets (optional)
    seed-registry = "flags.seeds:REGISTRY"        # the tables its seed files fill (with seeds)

    project = load_project(platform.APP)          # finds and reads it; imports the model modules
    project.apps                                  # (platform, flags): every app, the platform first
    project.own                                   # "flags": the app commands work on by default
    project.bind(db)                              # every app's models
    Runner(db, project.migration_sources()).up()  # what `orm-kit migrate` does

A model module gives its ``MODELS`` if it has one, else every model class defined in it (a base class
of the others with no fields of its own is not a table); ``"module:ATTRIBUTE"`` names a sequence (or one
model) instead. The project's folder is put on ``sys.path`` to import them (``pythonpath = ["src"]``
names other folders, relative to the file). Further apps, or other folders for the platform (an
unreleased platform's migrations, say), go in tables of their own; for the platform, ``models`` are
added to its own, the folders replace its shipped ones:

    [tool.orm-kit.apps.platform]
    migrations = "vendor/platform-next/migrations"
    models = ["platform_next"]

The nearest ``pyproject.toml`` with a ``[tool.orm-kit]`` table wins. No such file: the platform alone,
exactly as without this module. Flags (:class:`Overrides`) win over the file. Anything unusable is a
:class:`~orm_kit.errors.ProjectConfigError` naming the file, the key, what was expected and the fix.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit.apps import App, bind, migration_sources, seed_sources, tables_of
from orm_kit.errors import ConfigurationError, ProjectConfigError, first_line
from orm_kit.migrate.apps import APP_NAME, AppMigrations
from orm_kit.seeding import SeedRegistry, SeedSource

__all__ = ["Overrides", "Project", "find_pyproject", "load_project", "models_of"]

_APP_KEYS = ("models", "migrations", "seeds", "seed-registry")
_KEYS = ("app", *_APP_KEYS, "pythonpath", "apps")


@dataclass(frozen=True)
class Overrides:
    """What command-line flags say; each wins over the file.

    ``models``, ``migrations``, ``seeds`` and ``seed_registry`` describe the project's own app (the platform
    when none is configured); ``app`` names the project's app when flags alone define it (``models`` given
    and no ``[tool.orm-kit]``). ``seeds`` is a folder of sets *added* to the app's own (the shipped ones, for
    the platform), unless ``replace_seeds``: then it is the app's only seed folder.
    """

    app: str | None = None
    models: tuple[str, ...] = ()
    migrations: Path | None = None
    seeds: Path | None = None
    seed_registry: str | None = None
    replace_seeds: bool = False


@dataclass(frozen=True)
class Project:
    """Every app of a project, the platform first, and which one is the project's own."""

    apps: tuple[App, ...]
    own: str
    pyproject: Path | None = None

    def app(self, name: str | None = None) -> App:
        """The app called ``name`` (default: the project's own)."""
        wanted = name or self.own
        for app in self.apps:
            if app.name == wanted:
                return app
        where = f" ({self.pyproject})" if self.pyproject else ""
        raise ConfigurationError(f"unknown app {shown(wanted)}: the apps here are "
                                 f"{', '.join(a.name for a in self.apps)}{where}; an app is named by `app` in "
                                 "[tool.orm-kit] of pyproject.toml")

    def migration_sources(self) -> list[AppMigrations]:
        """Every app's migrations, for :class:`~orm_kit.migrate.Runner`, ``check``, ``verify``, ``make``."""
        return migration_sources(self.apps)

    def seed_sources(self) -> list[SeedSource]:
        """Every app's seed data, for :func:`orm_kit.seeding.load`, ``status``, ``remove``."""
        return seed_sources(self.apps)

    def bind(self, db: peewee.Database) -> None:
        """Bind every app's models to ``db``."""
        bind(db, self.apps)

    def ordered(self, default: str | None = None) -> tuple[App, ...]:
        """The apps with ``default`` (the app a command works on) last: engines take the last as the default."""
        chosen = self.app(default)
        return (*(a for a in self.apps if a is not chosen), chosen)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` that has a ``[tool.orm-kit]`` table."""
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "orm-kit" in _read(candidate).get("tool", {}):
            return candidate
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError; not UTF-8; a number past 4,300 digits; nesting
        problem = str(exc)[:200] if isinstance(exc, ValueError) else "it nests too deep"
        raise ConfigurationError(f"{path}: not valid TOML: {problem} (fix the syntax)") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot be read: {first_line(exc)}") from None


def load_project(platform: App, *, start: Path | None = None, pyproject: Path | None = None,
                 overrides: Overrides = Overrides()) -> Project:
    """The project's apps: ``platform``, then those of the nearest ``[tool.orm-kit]`` (or ``pyproject``), flags
    winning; imports the model modules and seed registries they name."""
    path = pyproject
    if path is not None:
        path = path / "pyproject.toml" if path.is_dir() else path
        if not path.is_file():
            raise ConfigurationError(f"{path} does not exist (name a pyproject.toml, or the folder that has one)")
    else:
        path = find_pyproject(start or Path.cwd())
    settings: Mapping[str, Any] = {}
    root = (start or Path.cwd()).resolve()
    if path is not None:
        path = path.resolve()
        root = path.parent
        settings = _read(path).get("tool", {}).get("orm-kit", {})
        if not isinstance(settings, Mapping):
            raise ProjectConfigError(str(path), "(the table)", "expected a table ([tool.orm-kit]), got a value")
    return _Reader(path, root, settings, overrides).project(platform)


class _Reader:
    """One pass over one configuration: checks every key, imports what it names."""

    def __init__(self, path: Path | None, root: Path, settings: Mapping[str, Any], overrides: Overrides) -> None:
        self.path = path
        self.root = root
        self.settings = settings
        self.overrides = overrides
        self.shown = str(path) if path else "the command line"

    def fail(self, key: str, problem: str) -> ProjectConfigError:
        return ProjectConfigError(self.shown, key, problem)

    def project(self, platform: App) -> Project:
        settings = self.settings
        unknown = [key for key in settings if key not in _KEYS]
        if unknown:
            return self._unknown(unknown[0], _KEYS, "")
        if self.path is not None or self.overrides.models:  # only a project's own modules need importing
            self._python_path(settings.get("pythonpath", ["."]))
        apps: list[App] = [platform]
        others = settings.get("apps", {})
        if not isinstance(others, Mapping):
            raise self.fail("apps", "expected tables of apps ([tool.orm-kit.apps.NAME]), got a value")
        for name, table in others.items():
            key = f"apps.{name}"
            if not isinstance(table, Mapping):
                raise self.fail(key, f"expected a table ([tool.orm-kit.{key}]) with {', '.join(_APP_KEYS)}")
            bad = [k for k in table if k not in _APP_KEYS]
            if bad:
                return self._unknown(bad[0], _APP_KEYS, f"{key}.")
            if name == platform.name:
                apps[0] = self._extend(platform, table, key)
            else:
                apps.append(self._app(self._name(name, key, platform), table, key))
        own = self._own(platform, apps)
        if own is not None:
            apps.append(own)
        elif self.overrides != Overrides(app=self.overrides.app):
            apps[0] = self._flags_on(apps[0])
        try:
            tables_of(apps)
        except ConfigurationError as exc:
            raise self.fail("models", f"{exc}") from None
        return Project(tuple(apps), own.name if own is not None else platform.name, self.path)

    def _unknown(self, key: str, allowed: Sequence[str], prefix: str) -> Project:
        raise self.fail(f"{prefix}{key}", f"is not a setting orm-kit knows (expected one of {', '.join(allowed)}; "
                                          "check the spelling)")

    def _python_path(self, value: Any) -> None:
        entries = self._strings(value, "pythonpath", 'a list of folders, like pythonpath = ["src"]')
        for entry in reversed(entries):
            folder = str((self.root / entry).resolve())
            if folder not in sys.path:
                sys.path.insert(0, folder)  # the project's own modules come first, as `python -m` would have them

    def _name(self, name: str, key: str, platform: App) -> str:
        if not isinstance(name, str) or not APP_NAME.match(name):
            raise self.fail(key, f"app name {shown(name)} is not usable: expected lowercase letters, digits, '_' "
                                 "or '-', starting with a letter (e.g. feature_flags)")
        if name == platform.name:
            raise self.fail(key, f"{shown(name)} is the platform's own name; name your app differently (its other "
                                 f"folders go in [tool.orm-kit.apps.{platform.name}])")
        return name

    def _own(self, platform: App, apps: list[App]) -> App | None:
        flags = self.overrides
        name: Any = self.settings.get("app")
        described = any(key in self.settings for key in _APP_KEYS)
        if name is None and described:
            raise self.fail("app", "is missing: name the app whose models and migrations these are (app = \"flags\"; "
                                   "it keys the migration history and prefixes seed set names)")
        if name is None and flags.models:
            if flags.app is None:
                raise ConfigurationError("--models needs --app NAME: the name of the app whose models these are")
            name = flags.app
        if name is None:
            return None
        name = self._name(name, "app", platform)
        if any(app.name == name for app in apps):
            raise self.fail("app", f"{shown(name)} is also one of [tool.orm-kit.apps]; give each app one name")
        own = self._app(name, self.settings, "")
        return self._flags_on(own)

    def _flags_on(self, app: App) -> App:
        flags = self.overrides
        changes: dict[str, Any] = {}
        if flags.models:
            changes["models"] = self._models(flags.models, "--models")
        if flags.migrations is not None:
            changes["migrations"] = flags.migrations.resolve()
            changes["installed"] = False
        if flags.seeds is not None:
            folder = flags.seeds.resolve()
            if flags.replace_seeds or app.seeds is None:
                changes["seeds"] = folder
            elif folder != app.seeds and folder not in app.more_seeds:
                changes["more_seeds"] = (*app.more_seeds, folder)
        if flags.seed_registry is not None:
            changes["seed_registry"] = self._registry(flags.seed_registry, "--seed-registry")
        if app.models and app.migrations is None and "migrations" not in changes:
            raise self.fail("migrations", f"is missing for app {shown(app.name)}: name the folder of its numbered "
                                          'migrations (migrations = "migrations"; `orm-kit migrate make` fills it)')
        return dataclasses.replace(app, **changes)

    def _app(self, name: str, table: Mapping[str, Any], prefix: str) -> App:
        key = f"{prefix}." if prefix else ""
        models = self._models(self._strings(table.get("models", []), f"{key}models",
                                            'a list of modules, like models = ["flags.models"]'), f"{key}models")
        migrations = self._folder(table.get("migrations"), f"{key}migrations")
        seeds = self._folder(table.get("seeds"), f"{key}seeds")
        registry = table.get("seed-registry")
        if registry is not None and not isinstance(registry, str):
            raise self.fail(f"{key}seed-registry", 'expected "module:ATTRIBUTE" text, like "flags.seeds:REGISTRY"')
        if prefix and migrations is None and models:
            raise self.fail(f"{key}migrations", f"is missing for app {shown(name)}: name the folder of its migrations")
        if seeds is not None and registry is None and not self.overrides.seed_registry:
            raise self.fail(f"{key}seed-registry", "is missing: seed files need the registry of the tables they fill "
                                                   '(seed-registry = "flags.seeds:REGISTRY", a SeedRegistry)')
        return App(name, models, migrations, seeds,
                   self._registry(registry, f"{key}seed-registry") if registry is not None else None)

    def _extend(self, platform: App, table: Mapping[str, Any], key: str) -> App:
        extra = self._app(platform.name, table, key)
        changes: dict[str, Any] = {"models": platform.models + extra.models}
        if extra.migrations is not None:
            changes.update(migrations=extra.migrations, installed=False)
        if extra.seeds is not None:
            changes["seeds"] = extra.seeds
        if extra.seed_registry is not None:
            changes["seed_registry"] = extra.seed_registry
        return dataclasses.replace(platform, **changes)

    def _strings(self, value: Any, key: str, expected: str) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"expected {expected}, got {shown(value)}")
        return list(value)

    def _folder(self, value: Any, key: str) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, 'expected a folder, relative to the pyproject.toml, like "migrations"; got '
                                 f"{shown(value)}")
        return (self.root / value).resolve()

    def _import(self, ref: str, key: str) -> tuple[Any, str | None]:
        module_name, _, attribute = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise self.fail(key, f"cannot import {shown(module_name)} ({exc}): is it under {self.root}, or installed? "
                                 'a src/ layout needs pythonpath = ["src"]') from None
        except Exception as exc:  # noqa: BLE001 - any error in the user's module is reported, one line
            raise self.fail(key, f"importing {shown(module_name)} failed: {first_line(exc)} (fix the module)") from None
        if not attribute:
            return module, None
        if not hasattr(module, attribute):
            raise self.fail(key, f"module {shown(module_name)} has no attribute {shown(attribute)} (expected "
                                 f"\"{module_name}:NAME\" naming what it defines)")
        return getattr(module, attribute), attribute

    def _models(self, refs: Iterable[str], key: str) -> tuple[type[peewee.Model], ...]:
        found: list[type[peewee.Model]] = []
        for ref in refs:
            value, attribute = self._import(ref, key)
            if attribute is None:
                models = models_of(value)
            elif _is_model(value):
                models = [value]
            elif isinstance(value, Iterable) and all(_is_model(m) for m in value):
                models = list(value)
            else:
                raise self.fail(key, f"{ref} is {type(value).__name__}, expected a sequence of model classes")
            if not models:
                raise self.fail(key, f"module {shown(ref)} defines no model classes (subclasses of orm_kit.Model): "
                                     "point at the module that defines your tables")
            found += [m for m in models if m not in found]
        return tuple(found)

    def _registry(self, ref: str, key: str) -> SeedRegistry:
        if ":" not in ref:
            raise self.fail(key, f'expected "module:ATTRIBUTE" naming a SeedRegistry, like "flags.seeds:REGISTRY"; '
                                 f"got {shown(ref)}")
        value, _ = self._import(ref, key)
        if not isinstance(value, SeedRegistry):
            raise self.fail(key, f"{ref} is {type(value).__name__}, expected an orm_kit.seeding.SeedRegistry")
        return value


def _is_model(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, peewee.Model)


def models_of(module: Any) -> list[type[peewee.Model]]:
    """A module's tables: its ``MODELS``, else the model classes defined in it but bases with no fields of their own."""
    listed = getattr(module, "MODELS", None)
    if listed is not None:
        return list(listed)
    defined = [v for v in vars(module).values() if _is_model(v) and v.__module__ == module.__name__]
    bases = {base for model in defined for base in model.__mro__[1:]}

    def own_fields(model: type[peewee.Model]) -> bool:
        return any(name in vars(model) for name in model._meta.fields if name != "id")

    return [model for model in defined if model not in bases or own_fields(model)]
