"""The worked example (examples/feature-flags), driven through the `orm-kit` command as a service would.

A service folder with its own pyproject.toml, one model module and an empty migrations folder goes
from `orm-kit migrate make` to `migrate`, `migrate check` (clean) and `seed`, with no Python call and
no copied platform files; then the platform ships a new migration while the app's are applied, and
nothing collides. Every command runs as its own process in the service's folder, on SQLite and on
PostgreSQL.

The platform upgrade is simulated the documented way: ``[tool.orm-kit.apps.platform]`` points the
platform's migrations at another folder (a copy of the shipped ones) and adds a model module to its
models; ``orm-kit migrate make --app platform`` writes the platform's next migration there, as the
platform's own developers would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orm_kit import platform

from conftest import EXAMPLE

ORM_KIT = Path(sys.executable).parent / "orm-kit"

NEXT_PLATFORM_MODELS = '''"""The platform's next release, as far as this test needs it: one new table."""

import peewee

import orm_kit
from orm_kit import Environment


class MaintenanceWindow(orm_kit.Model):
    environment = peewee.ForeignKeyField(Environment, backref="maintenance_windows", on_delete="CASCADE")
    reason = peewee.CharField(max_length=200)


MODELS = (MaintenanceWindow,)
'''


def run(folder: Path, db_url: str, *args: str) -> tuple[int, str, str]:
    """`orm-kit ARGS` in ``folder``, as its own process (nothing imported into this one)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "DATABASE_URL")}
    env["ORM_KIT_DATABASE_URL"] = db_url
    done = subprocess.run([str(ORM_KIT), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    return done.returncode, done.stdout, done.stderr


def without_timestamp(text: str) -> str:
    return re.sub(r"# Generated from a schema diff on .*\n", "", text)


@pytest.fixture
def service(tmp_path: Path) -> Path:
    """A copy of the example service with an empty migrations folder."""
    folder = tmp_path / "feature-flags"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.db*"))
    for path in (folder / "migrations").iterdir():
        path.unlink()
    return folder


def test_a_service_gets_its_own_tables_from_make_to_seed_and_survives_a_platform_upgrade(
        service: Path, db_url: str) -> None:
    # make: only the app's tables, depending on the platform's head; exactly the example's committed file.
    code, out, err = run(service, db_url, "migrate", "make", "initial")
    assert (code, err) == (0, ""), err
    made = service / "migrations" / "0001_initial.py"
    assert out == f"created {made} (read it, and finish every TODO, before applying it)\n"
    text = made.read_text()
    assert "depends_on = [('platform', '0003_deployment_history_indexes')]" in text
    assert "db.create_tables([FeatureFlag])" in text and "db.create_tables([DeployWindow])" in text
    assert "create_tables([Service])" not in text and "TODO" not in text
    assert without_timestamp(text) == without_timestamp((EXAMPLE / "migrations" / "0001_initial.py").read_text())

    code, out, err = run(service, db_url, "migrate")
    assert (code, out) == (0, "applied platform:0001_initial\napplied platform:0002_deployment_duration\napplied "
                              "platform:0003_deployment_history_indexes\napplied flags:0001_initial\n"), err
    # On PostgreSQL the platform's backfill and indexes on a table that exists by then run after each commit,
    # and the progress on stderr names the app's migration.
    assert all(line.startswith("platform:000") and (" up(): after its commit: " in line or " up(): backfill " in line)
               for line in err.splitlines()), err
    assert run(service, db_url, "migrate", "check") == (
        0, "no drift: models, migrations and the database agree (platform, flags)\n", "")
    assert run(service, db_url, "seed") == (
        0, "seeded demo, reference, flags:defaults: 238 inserted, 0 updated, 0 unchanged\n", "")
    code, out, _ = run(service, db_url, "seed", "status", "--set", "flags:defaults")
    assert code == 0 and out.startswith("flags:defaults       loaded             6 rows")
    code, out, _ = run(service, db_url, "migrate", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["apps"] == ["platform", "flags"]
    assert [(m["app"], m["name"]) for m in status["migrations"]][-2:] == [
        ("platform", "0003_deployment_history_indexes"), ("flags", "0001_initial")]

    # The platform ships 0004 while the app's 0001 is applied.
    upcoming = service / "next-platform"
    shutil.copytree(platform.migrations_dir(), upcoming / "migrations", ignore=shutil.ignore_patterns("__*"))
    (service / "platform_next.py").write_text(NEXT_PLATFORM_MODELS)
    with (service / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.orm-kit.apps.platform]\nmigrations = "next-platform/migrations"\n'
                        'models = ["platform_next"]\n')
    code, out, _ = run(service, db_url, "migrate", "check")
    assert code == 1 and out.startswith("drift (platform): maintenance_window: models yes, migrations absent")
    code, out, err = run(service, db_url, "migrate", "make", "maintenance windows", "--app", "platform")
    assert (code, err) == (0, ""), err
    assert out.startswith(f"created {upcoming / 'migrations' / '0004_maintenance_windows.py'}")
    assert "depends_on" not in (upcoming / "migrations" / "0004_maintenance_windows.py").read_text()
    code, out, _ = run(service, db_url, "migrate", "status")
    assert code == 1 and "pending: platform:0004_maintenance_windows (run `orm-kit migrate up`)" in out
    assert "problem" not in out  # not late, not a collision: numbered apart from the app's
    assert run(service, db_url, "migrate") == (0, "applied platform:0004_maintenance_windows\n", "")
    assert run(service, db_url, "migrate", "check") == (
        0, "no drift: models, migrations and the database agree (platform, flags)\n", "")

    # The app moves on, on top of the new platform: its next migration depends on the new head.
    models = service / "feature_flags" / "models.py"
    models.write_text(models.read_text().replace(
        '    rollout_percent = peewee.IntegerField(default=100)\n',
        '    rollout_percent = peewee.IntegerField(default=100)\n'
        '    owner_note = peewee.CharField(max_length=200, null=True)\n'))
    code, out, err = run(service, db_url, "migrate", "make", "flag owner note")
    assert code == 0, err
    second = (service / "migrations" / "0002_flag_owner_note.py").read_text()
    assert "depends_on = [('platform', '0004_maintenance_windows')]" in second
    assert "migrator.add_column('feature_flag', 'owner_note'" in second
    assert run(service, db_url, "migrate") == (0, "applied flags:0002_flag_owner_note\n", "")
    assert run(service, db_url, "migrate", "check")[0] == 0
    code, out, _ = run(service, db_url, "migrate", "verify")
    assert code == 0 and out.splitlines()[-1] == "ok flags:0002_flag_owner_note"
    assert run(service, db_url, "seed")[1] == "seeded demo, reference, flags:defaults: 0 inserted, 0 updated, 238 " \
                                              "unchanged\n"
    assert run(service, db_url, "migrate", "down") == (0, "reverted flags:0002_flag_owner_note\n", "")


def test_the_committed_example_checks_clean_without_a_make(service: Path, db_url: str) -> None:
    shutil.copy(EXAMPLE / "migrations" / "0001_initial.py", service / "migrations")
    assert run(service, db_url, "migrate")[0] == 0
    assert run(service, db_url, "migrate", "check")[0] == 0
    assert run(service, db_url, "seed", "--set", "reference", "--set", "demo", "--set", "flags:defaults")[0] == 0
    # Reverting the platform under the app's applied migration is refused, naming the fix.
    code, out, err = run(service, db_url, "migrate", "down", "--app", "platform")
    assert (code, out) == (1, "")
    assert "cannot revert platform:0003_deployment_history_indexes: flags:0001_initial is applied and depends on " \
           "it; revert that first (orm-kit migrate down --app flags --steps 1)" in err


def test_the_services_own_test_suite_gets_its_tables_from_the_pytest_plugin(pytester: pytest.Pytester,
                                                                            orm_kit_postgres_url: str) -> None:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    pytester.makepyfile(test_flags='''
        from orm_kit import Repository, Service, Team
        from feature_flags.models import FeatureFlag, flags_of

        def test_a_flag_of_a_service(orm_kit_db):
            service = Service.create(name="checkout-api", tier="high", owner=Team.create(name="payments"))
            Repository(FeatureFlag, orm_kit_db).create(service=service, name="dark-mode")
            assert [f.name for f in flags_of(service)] == ["dark-mode"]
    ''')
    result = pytester.runpytest("--orm-kit-postgres-url", orm_kit_postgres_url)
    result.assert_outcomes(passed=2)  # SQLite and PostgreSQL, each migrated by both apps' migrations
