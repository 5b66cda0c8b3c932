"""The package's architecture, checked: which way imports run between the toolkit, the platform and the CLI.

The toolkit (core modules, ``migrate/``, ``seeding/``, ``testing/``) is reusable with any peewee models, so
it never imports the platform (``models/``, ``repositories/``, ``platform.py``, ``synthetic.py``) or the CLI;
the platform never imports the CLI; the engines have no default folders; and a migration file never imports
today's models (it is frozen history). Relative imports count as what they resolve to, and a name taken from
the package's front door (``from orm_kit import connect``) counts as importing ``orm_kit``, which re-exports
the platform.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orm_kit"

PLATFORM = ("orm_kit.models", "orm_kit.repositories", "orm_kit.platform", "orm_kit.platform_testing",
            "orm_kit.synthetic", "orm_kit.migrations", "orm_kit.seed_data")
CLI = ("orm_kit.cli",)
# The package's front door re-exports both halves (its curated __all__); the CLI sits above everything.
ABOVE_THE_SPLIT = {"orm_kit", "orm_kit.cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports (``from orm_kit import platform`` counts as ``orm_kit.platform``)."""
    name = module_name(path)
    return imports_of(path.read_text(), name, is_package=path.name == "__init__.py")


def imports_of(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """The modules ``source`` (the module ``name``) imports: relative imports resolved, and a name taken
    from a package's front door (``from orm_kit import connect``) counted as the package itself."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in KNOWN else module)
    return found
def belongs(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if not p.is_symlink()}
# Everything importable as orm_kit.X: the modules, the CLI (a symlink) and the folders shipped inside the package.
KNOWN = set(MODULES) | {"orm_kit.cli", "orm_kit.migrations", "orm_kit.seed_data"}
TOOLKIT = sorted(n for n in MODULES if n not in ABOVE_THE_SPLIT and not belongs(n, PLATFORM))


def test_the_split_is_what_this_test_thinks_it_is() -> None:
    # A module moved or renamed must land on a side on purpose.
    assert {"orm_kit.db", "orm_kit.dialect", "orm_kit.migrate.runner", "orm_kit.seeding.loader",
            "orm_kit.testing.pgserver", "orm_kit.testing.plugin"} <= set(TOOLKIT)
    assert {"orm_kit.platform", "orm_kit.platform_testing", "orm_kit.synthetic", "orm_kit.models.service",
            "orm_kit.repositories.deployment"} <= set(MODULES) - set(TOOLKIT)


@pytest.mark.parametrize("name", TOOLKIT)
def test_the_toolkit_never_imports_the_platform_or_the_cli(name: str) -> None:
    # The front door (orm_kit/__init__.py) re-exports the platform: importing a name from it is importing the platform.
    wrong = sorted(m for m in imported(MODULES[name]) if belongs(m, PLATFORM + CLI) or m == "orm_kit")
    assert not wrong, f"{name} (toolkit) imports {wrong}: pass the platform's parts in instead"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if belongs(n, PLATFORM)))
def test_the_platform_never_imports_the_cli(name: str) -> None:
    wrong = sorted(m for m in imported(MODULES[name]) if belongs(m, CLI))
    assert not wrong, f"{name} imports the CLI {wrong}"


@pytest.mark.parametrize("engine", ["orm_kit.migrate", "orm_kit.seeding"])
def test_the_engines_know_no_folder_of_their_own(engine: str) -> None:
    for name, path in MODULES.items():
        if belongs(name, (engine,)):
            text = path.read_text()
            assert "importlib.resources" not in text and "package_files" not in text, name
            assert "orm_kit.migrations" not in text and "orm_kit.seed_data" not in text, name


def test_the_migration_and_seed_engines_do_not_depend_on_each_other() -> None:
    for name, path in MODULES.items():
        if belongs(name, ("orm_kit.migrate",)):
            assert not any(belongs(m, ("orm_kit.seeding",)) for m in imported(path)), name
        if belongs(name, ("orm_kit.seeding",)):
            assert not any(belongs(m, ("orm_kit.migrate",)) for m in imported(path)), name


@pytest.mark.parametrize("path", sorted([*(ROOT / "migrations").glob("[0-9]*.py"),
                                         *(ROOT / "examples").glob("*/migrations/[0-9]*.py")]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_a_migration_file_never_imports_todays_models(path: Path) -> None:
    app_packages = {p.parent.name for p in path.parent.parent.glob("*/__init__.py")}
    wrong = sorted(m for m in imported(path) if m.startswith("orm_kit") or m.split(".")[0] in app_packages)
    assert not wrong, f"{path.name} imports {wrong}: declare what it needs inline (frozen history)"


def test_the_import_check_sees_a_violation() -> None:
    # The checks above would pass vacuously if imported() found nothing: prove it finds a platform import.
    assert "orm_kit.models" in imported(MODULES["orm_kit.platform"])
    assert belongs("orm_kit.platform", PLATFORM) and not belongs("orm_kit.platforms_x", PLATFORM)


@pytest.mark.parametrize(("source", "module", "expected"), [
    ("from ..platform import MODELS", "orm_kit.migrate.files", {"orm_kit.platform"}),
    ("from .. import models, dialect", "orm_kit.seeding.loader", {"orm_kit.models", "orm_kit.dialect"}),
    ("from .files import discover", "orm_kit.migrate.plan", {"orm_kit.migrate.files"}),
    ("from . import cli", "orm_kit", {"orm_kit.cli"}),
    ("from orm_kit import SEED_REGISTRY", "orm_kit.db", {"orm_kit"}),
    ("import orm_kit", "orm_kit.db", {"orm_kit"}),
    ("from orm_kit import dialect", "orm_kit.db", {"orm_kit.dialect"}),
    ("from orm_kit.models import Team", "orm_kit.db", {"orm_kit.models"}),
    ("from orm_kit import migrations", "orm_kit.db", {"orm_kit.migrations"}),
])
def test_the_import_check_resolves_relative_and_front_door_imports(source: str, module: str,
                                                                    expected: set[str]) -> None:
    assert imports_of(source, module, is_package=module == "orm_kit") == expected
