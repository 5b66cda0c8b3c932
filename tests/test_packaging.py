"""A plain (not editable) install gives a working `orm-kit` in any folder, migrations shipped inside, and a
pytest plugin that a service's own tests pick up."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """orm-kit installed (not editable) into a folder of its own."""
    tmp_path = tmp_path_factory.mktemp("install")
    # Build from a copy: building in place would leave build/ and *.egg-info in the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.db", "*.db-*", ".*_cache"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        check=True, cwd=tmp_path, capture_output=True,
    )
    return target


@pytest.mark.slow
def test_plain_install_migrates_from_another_folder(site: Path, tmp_path: Path) -> None:
    target = site
    assert (target / "orm_kit" / "migrations" / "0001_initial.py").exists()
    assert (target / "orm_kit" / "py.typed").exists()
    assert (target / "orm_kit" / "cli.py").is_file() and not (target / "cli.py").exists()
    # Every package folder of the source ships (setup.cfg lists packages one by one).
    packages = {p.parent.relative_to(ROOT) for p in (ROOT / "orm_kit").rglob("__init__.py")}
    assert sorted(str(p) for p in packages if not (target / p / "__init__.py").exists()) == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # -S: no .pth files, so this venv's editable install of orm_kit cannot fill in what the plain install
    # lacks (its import finder would serve any missing subpackage from the source tree); the dependencies
    # still come from the venv's site-packages, after the plain install.
    path = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    env = {**os.environ, "PYTHONPATH": path, "ORM_KIT_DATABASE_URL": "", "DATABASE_URL": ""}
    python = [sys.executable, "-S"]
    where = subprocess.run([*python, "-c", "from orm_kit import platform; print(platform.migrations_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == target / "orm_kit" / "migrations"
    result = subprocess.run([*python, str(target / "bin" / "orm-kit"), "migrate"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("applied 0001_initial\napplied 0002_deployment_duration\n"
                   "applied 0003_deployment_history_indexes\n")
    tables = {r[0] for r in sqlite3.connect(elsewhere / "orm_kit.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"team", "service", "deployment", "incident"} <= tables
    # the seed sets ship inside the package too
    assert (target / "orm_kit" / "seed_data" / "demo" / "deployments.yaml").exists()
    result = subprocess.run([*python, str(target / "bin" / "orm-kit"), "seed"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "seeded demo, reference: 232 inserted, 0 updated, 0 unchanged\n"


@pytest.mark.slow
def test_plain_install_brings_the_pytest_plugin(site: Path, tmp_path: Path, orm_kit_postgres_url: str) -> None:
    # A service's repository: no conftest.py, no configuration; its tests ask for the plugin's fixtures.
    (tmp_path / "test_service.py").write_text(
        "import orm_kit\n"
        "from orm_kit import ServiceRepository, Team\n\n"
        "def test_installed_copy(orm_kit_db, orm_kit_backend, max_queries):\n"
        f"    assert orm_kit.__file__.startswith({str(site)!r})\n"
        "    team = Team.create(name='payments')\n"
        "    with max_queries(1):\n"
        "        assert ServiceRepository(orm_kit_db).find_by_name('checkout-api') is None\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "ORM_KIT_TEST_POSTGRES_URL": orm_kit_postgres_url}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "test_service.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_installed_copy[sqlite] PASSED" in result.stdout
    assert "test_installed_copy[postgres] PASSED" in result.stdout


SERVICE_CODE = '''\
from __future__ import annotations

import peewee

import orm_kit
from orm_kit import Repository, Service


class Note(orm_kit.Model):
    id = peewee.AutoField()
    service = peewee.ForeignKeyField(Service, backref="notes", on_delete="CASCADE")
    body = peewee.TextField()
    pinned = peewee.BooleanField(default=False)


def use(db: peewee.Database, service: Service) -> list[Note]:
    notes = Repository(Note, db)
    notes.create(service=service, body="typed")
    assert service.tier in orm_kit.models.TIERS
    notes.find(pinned__contains="x")
    Note(body=3)
    return notes.find(body__startswith="t", pinned=True, order_by=["-id"])
'''


@pytest.mark.slow
def test_a_services_own_mypy_uses_the_installed_types_and_plugin(site: Path, tmp_path: Path) -> None:
    # A service's repository with orm-kit installed (not editable): its own mypy configuration names the plugin.
    (tmp_path / "pyproject.toml").write_text('[tool.mypy]\nstrict = true\nplugins = ["orm_kit.mypy"]\n')
    (tmp_path / "notes.py").write_text(SERVICE_CODE)
    # -S as above: mypy imports the plugin, and finds orm_kit's types, from the plain install only.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])}
    result = subprocess.run([sys.executable, "-S", "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
                             "--no-error-summary", "notes.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=False)
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert errors == [
        'notes.py:20: error: Unexpected keyword argument "pinned__contains" for "find" of "Repository[Note]"; did '
        'you mean "pinned__not_in" or "pinned__in"?  [call-arg]',
        'notes.py:21: error: Argument "body" to "Note" has incompatible type "int"; expected "str"  [arg-type]',
    ], result.stdout + result.stderr
