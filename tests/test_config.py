"""[tool.orm-kit] in pyproject.toml: found in the working folder or a parent, checked key by key, flags winning."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from orm_kit import platform
from orm_kit.cli import main
from orm_kit.config import Overrides, load_project
from orm_kit.errors import ConfigurationError, ProjectConfigError

MODELS_MODULE = '''
import peewee
import orm_kit
from orm_kit import Service


class Base(orm_kit.Model):
    """A base of the module's tables: no fields of its own, so no table."""


class Widget(Base):
    service = peewee.ForeignKeyField(Service, backref="widgets", on_delete="CASCADE")
    name = peewee.CharField(max_length=40)


class Gadget(Base):
    label = peewee.CharField(max_length=40)
'''

SEEDS_MODULE = '''
from orm_kit.seeding import SeedRegistry, SeedTable
from {package}.models import Widget

REGISTRY = SeedRegistry([SeedTable(Widget, key=("service", "name"))])
NOT_A_REGISTRY = 42
'''


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_project puts the project's folder on it


def project(tmp_path: Path, settings: str, *, models: str = MODELS_MODULE) -> tuple[Path, str]:
    """A service folder with pyproject.toml and a package of its own (uniquely named: imports are cached)."""
    package = f"svc_{uuid.uuid4().hex[:10]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "models.py").write_text(models)
    (tmp_path / package / "seeds.py").write_text(SEEDS_MODULE.format(package=package))
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(settings).replace("PKG", package))
    return tmp_path / "pyproject.toml", package


FULL = """
    [project]
    name = "svc"

    [tool.orm-kit]
    app = "widgets"
    models = ["PKG.models"]
    migrations = "db/migrations"
    seeds = "db/seeds"
    seed-registry = "PKG.seeds:REGISTRY"
"""


def test_without_configuration_the_platform_is_the_only_app(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'other'\n\n[tool.ruff]\nline-length = 99\n")
    found = load_project(platform.APP, start=tmp_path)
    assert found.apps == (platform.APP,) and found.own == "platform" and found.pyproject is None


def test_the_nearest_configuration_above_the_working_folder_is_read_paths_relative_to_it(tmp_path: Path) -> None:
    path, _ = project(tmp_path, FULL)
    deeper = tmp_path / "src" / "deeper"
    deeper.mkdir(parents=True)
    found = load_project(platform.APP, start=deeper)
    assert found.pyproject == path.resolve() and found.own == "widgets"
    assert [app.name for app in found.apps] == ["platform", "widgets"]
    widgets = found.app()
    assert [m.__name__ for m in widgets.models] == ["Widget", "Gadget"]  # Base has no fields of its own
    assert widgets.migrations == tmp_path.resolve() / "db" / "migrations"
    assert widgets.seeds == tmp_path.resolve() / "db" / "seeds"
    assert widgets.seed_registry is not None and list(widgets.seed_registry.by_name) == ["widget"]
    assert not widgets.installed and not widgets.plain_set_names
    assert [s.app for s in found.seed_sources()] == [None, "widgets"]
    assert [a.name for a in found.ordered("platform")] == ["widgets", "platform"]


def test_a_module_attribute_or_models_list_names_exactly_the_tables(tmp_path: Path) -> None:
    project(tmp_path, """
        [tool.orm-kit]
        app = "widgets"
        models = ["PKG.models:Gadget"]
        migrations = "migrations"
    """)
    assert [m.__name__ for m in load_project(platform.APP, start=tmp_path).app().models] == ["Gadget"]


@pytest.mark.parametrize(("settings", "key", "problem"), [
    ('app = "widgets"\nmodels = ["PKG.models"]\nmigration = "m"', "migration",
     "is not a setting orm-kit knows (expected one of app, models, migrations, seeds, seed-registry, pythonpath, "
     "apps; check the spelling)"),
    ('app = "widgets"\nmodels = 3\nmigrations = "m"', "models",
     'expected a list of modules, like models = ["flags.models"], got 3'),
    ('models = ["PKG.models"]\nmigrations = "m"', "app", "is missing: name the app whose models and migrations"),
    ('app = "platform"\nmodels = ["PKG.models"]\nmigrations = "m"', "app",
     "'platform' is the platform's own name; name your app differently"),
    ('app = "Widgets App"\nmigrations = "m"', "app", "app name 'Widgets App' is not usable"),
    ('app = "widgets"\nmodels = ["PKG.models"]', "migrations", "is missing for app 'widgets': name the folder"),
    ('app = "widgets"\nmodels = ["PKG.nowhere"]\nmigrations = "m"', "models", "cannot import 'PKG.nowhere'"),
    ('app = "widgets"\nmodels = ["PKG.models:Nope"]\nmigrations = "m"', "models",
     "module 'PKG.models' has no attribute 'Nope'"),
    ('app = "widgets"\nmodels = ["PKG.seeds"]\nmigrations = "m"', "models",
     "module 'PKG.seeds' defines no model classes"),
    ('app = "widgets"\nmodels = ["PKG.models"]\nmigrations = "m"\nseeds = "s"', "seed-registry",
     "is missing: seed files need the registry of the tables they fill"),
    ('app = "widgets"\nmodels = ["PKG.models"]\nmigrations = "m"\nseeds = "s"\nseed-registry = "PKG.seeds"',
     "seed-registry", 'expected "module:ATTRIBUTE" naming a SeedRegistry'),
    ('app = "widgets"\nmodels = ["PKG.models"]\nmigrations = "m"\nseeds = "s"\n'
     'seed-registry = "PKG.seeds:NOT_A_REGISTRY"', "seed-registry",
     "PKG.seeds:NOT_A_REGISTRY is int, expected an orm_kit.seeding.SeedRegistry"),
    ('app = "widgets"\nmodels = ["PKG.models", "orm_kit.models"]\nmigrations = "m"', "models",
     "table 'team' is declared by app 'platform' and by app 'widgets'"),
    ('app = "widgets"\nmigrations = "m"\n[tool.orm-kit.apps.platform]\nmigration = "x"', "apps.platform.migration",
     "is not a setting orm-kit knows (expected one of models, migrations, seeds, seed-registry"),
    ('app = "widgets"\nmigrations = "m"\npythonpath = "src"\n[tool.orm-kit.apps.widgets]\nmigrations = "n"', "app",
     "'widgets' is also one of [tool.orm-kit.apps]"),
])
def test_a_bad_setting_names_the_file_the_key_what_was_expected_and_the_fix(
        tmp_path: Path, settings: str, key: str, problem: str) -> None:
    path, package = project(tmp_path, "[tool.orm-kit]\n" + settings + "\n")
    with pytest.raises(ProjectConfigError) as caught:
        load_project(platform.APP, start=tmp_path)
    assert (caught.value.path, caught.value.key) == (str(path.resolve()), key)
    assert str(caught.value).startswith(f"{path.resolve()}: [tool.orm-kit] {key}: ")
    assert problem.replace("PKG", package) in caught.value.problem


def test_a_module_that_fails_to_import_is_one_line_naming_it(tmp_path: Path) -> None:
    _, package = project(tmp_path, FULL, models="raise RuntimeError('no database at import time, please')\n")
    with pytest.raises(ProjectConfigError, match=rf"importing '{package}.models' failed: RuntimeError: no database "
                                                 r"at import time, please \(fix the module\)"):
        load_project(platform.APP, start=tmp_path)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.orm-kit\napp = 1\n")
    with pytest.raises(ConfigurationError, match=r"pyproject.toml: not valid TOML: .* \(fix the syntax\)"):
        load_project(platform.APP, start=tmp_path)


def test_flags_win_over_the_file_and_alone_can_describe_an_app(tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.mkdir()
    _, package = project(service, FULL)
    other = tmp_path / "elsewhere"
    found = load_project(platform.APP, start=service, overrides=Overrides(
        migrations=other, models=(f"{package}.models:Widget",)))
    assert found.app().migrations == other.resolve() and [m.__name__ for m in found.app().models] == ["Widget"]
    assert found.app().seeds == service.resolve() / "db" / "seeds"
    # No [tool.orm-kit] at all: --app and --models make the app, the working folder is importable.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / f"{package}_bare.py").write_text(MODELS_MODULE)
    alone = load_project(platform.APP, start=bare, overrides=Overrides(
        app="gizmos", models=(f"{package}_bare",), migrations=bare / "migrations"))
    assert [a.name for a in alone.apps] == ["platform", "gizmos"] and alone.own == "gizmos"
    with pytest.raises(ConfigurationError, match="--models needs --app NAME"):
        load_project(platform.APP, start=bare, overrides=Overrides(models=(f"{package}_bare",)))
    # No project and no --models: --migrations is the platform's folder, as before apps.
    plain = load_project(platform.APP, start=bare, overrides=Overrides(migrations=bare / "m"))
    assert plain.apps[0].migrations == (bare / "m").resolve() and not plain.apps[0].installed


def test_the_platforms_folders_can_be_pointed_elsewhere_and_models_added(tmp_path: Path) -> None:
    project(tmp_path, """
    [tool.orm-kit]
    app = "widgets"
    models = ["PKG.models:Widget"]
    migrations = "db/migrations"

    [tool.orm-kit.apps.platform]
    migrations = "next/migrations"
    models = ["PKG.models:Gadget"]
    """)
    found = load_project(platform.APP, start=tmp_path)
    upgraded = found.app("platform")
    assert upgraded.migrations == tmp_path.resolve() / "next" / "migrations" and not upgraded.installed
    assert upgraded.models[:-1] == platform.MODELS and upgraded.models[-1].__name__ == "Gadget"
    assert upgraded.seeds == platform.APP.seeds and upgraded.plain_set_names
    with pytest.raises(ConfigurationError, match="unknown app 'nope': the apps here are platform, widgets"):
        found.app("nope")


def test_the_command_line_names_a_bad_configuration_in_one_line(tmp_path: Path) -> None:
    path, _ = project(tmp_path, '[tool.orm-kit]\napp = "widgets"\nmodels = ["PKG.models"]\n')
    result = CliRunner().invoke(main, ["migrate", "--project", str(tmp_path), "status"])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"Error: {path.resolve()}: [tool.orm-kit] migrations: is missing for app")
    result = CliRunner().invoke(main, ["--database", f"sqlite:///{tmp_path / 'x.db'}", "migrate", "--app", "nope",
                                       "up"])
    assert result.exit_code == 2 and "unknown app 'nope': the apps here are platform" in result.stderr
    result = CliRunner().invoke(main, ["migrate", "--project", str(tmp_path / "missing.toml"), "status"])
    assert result.exit_code == 1 and "missing.toml does not exist" in result.stderr


def test_a_src_layout_names_its_folder_in_pythonpath(tmp_path: Path) -> None:
    _, package = project(tmp_path, FULL)
    (tmp_path / "src").mkdir()
    (tmp_path / package).rename(tmp_path / "src" / package)
    with pytest.raises(ProjectConfigError, match=r'a src/ layout needs pythonpath = \["src"\]'):
        load_project(platform.APP, start=tmp_path)
    with (tmp_path / "pyproject.toml").open("a") as pyproject:
        pyproject.write('pythonpath = ["src"]\n')
    assert [m.__name__ for m in load_project(platform.APP, start=tmp_path).app().models] == ["Widget", "Gadget"]


@pytest.mark.parametrize("body", [
    "app = " + "9" * 5000,                                   # past Python's 4,300-digit limit (ValueError in tomllib)
    "app = " + "[" * 1000 + "]" * 1000,                      # nesting past the parser's recursion
    'app = "' + "a" * 5000 + '"',                            # quoted whole, it made a 5 kB message
    'app = "x"\nmodels = [' + "[" * 200 + "]" * 200 + "]",
], ids=["huge-number", "deep-nesting", "long-name", "nested-models"])
def test_a_hostile_pyproject_is_one_short_configuration_error(tmp_path: Path, body: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.orm-kit]\n" + body + "\n")
    with pytest.raises(ConfigurationError) as caught:
        load_project(platform.APP, pyproject=tmp_path / "pyproject.toml")
    assert str(tmp_path / "pyproject.toml") in str(caught.value) and len(str(caught.value)) < 1000


def test_a_pyproject_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.orm-kit]\napp = \"caf\xe9\"\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_project(platform.APP, pyproject=tmp_path / "pyproject.toml")


def test_seeds_flag_adds_a_folder_to_the_apps_own_unless_told_to_replace_them(tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.mkdir()
    project(service, FULL)
    other = tmp_path / "more-seeds"
    added = load_project(platform.APP, start=service, overrides=Overrides(seeds=other)).app()
    assert added.seeds == service.resolve() / "db" / "seeds" and added.more_seeds == (other.resolve(),)
    assert [s.directory for s in added.seed_folders()] == [added.seeds, other.resolve()]
    replaced = load_project(platform.APP, start=service, overrides=Overrides(seeds=other, replace_seeds=True)).app()
    assert replaced.seeds == other.resolve() and replaced.more_seeds == ()
    bare = tmp_path / "bare"
    bare.mkdir()
    shipped = load_project(platform.APP, start=bare, overrides=Overrides(seeds=other)).app()
    assert shipped.name == "platform" and shipped.seeds == platform.APP.seeds and shipped.more_seeds == (
        other.resolve(),)
    again = load_project(platform.APP, start=bare, overrides=Overrides(seeds=platform.APP.seeds)).app()
    assert again.more_seeds == ()  # the shipped folder named again is no second folder
