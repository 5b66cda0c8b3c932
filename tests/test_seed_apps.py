"""Seeds per app: an app's files fill its own tables, refer to the platform's rows by natural key, never collide."""

from __future__ import annotations

import textwrap
from pathlib import Path

import peewee
import pytest

from feature_flags.models import MODELS as FLAG_MODELS
from feature_flags.models import DeployWindow, FeatureFlag, flags_of
from feature_flags.seeds import REGISTRY as FLAGS
from orm_kit import Service, platform, seeding
from orm_kit.apps import App, migration_sources
from orm_kit.errors import ConfigurationError, SeedError
from orm_kit.migrate import Runner
from orm_kit.seeding import SeedRegistry, SeedSource, SeedTable

from conftest import EXAMPLE

PLATFORM = SeedSource(platform.SEED_REGISTRY, platform.seed_dir())


@pytest.fixture
def both(db: peewee.Database) -> peewee.Database:
    """The platform's and the example app's tables, migrated."""
    db.bind(FLAG_MODELS)
    Runner(db, migration_sources([platform.APP, App("flags", FLAG_MODELS, EXAMPLE / "migrations")])).up()
    return db


def flag_sets(tmp_path: Path, **files: str) -> SeedSource:
    folder = tmp_path / "flag_seeds"
    for name, text in files.items():
        path = folder / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return SeedSource(FLAGS, folder, app="flags")


def test_an_apps_rows_refer_to_the_platforms_rows_and_load_with_them_in_one_transaction(
        both: peewee.Database) -> None:
    sources = [PLATFORM, SeedSource(FLAGS, EXAMPLE / "seed_data", app="flags")]
    result = seeding.load(both, sources)
    assert result.sets == ("demo", "reference", "flags:defaults")
    assert sum(1 for c in result.changes if c.set_name == "flags:defaults") == 6
    checkout = Service.get(Service.name == "checkout-api")
    assert [(f.name, f.rollout_percent, f.enabled) for f in flags_of(checkout)] == [("new-checkout-flow", 25, True)]
    assert DeployWindow.select().count() == 4
    again = seeding.load(both, sources)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 238)
    assert [(s.name, s.state, s.rows) for s in seeding.status(both, sources)] == [
        ("demo", "loaded", 215), ("flags:defaults", "loaded", 6), ("reference", "loaded", 17)]


def test_set_names_never_collide_across_apps(both: peewee.Database, tmp_path: Path) -> None:
    flags = flag_sets(tmp_path, reference="""
        feature_flag:
          - {service: checkout-api, name: dark-mode}
    """)
    sources = [PLATFORM, flags]
    assert seeding.load(both, sources, sets=["reference", "demo"]).sets == ("reference", "demo")
    assert seeding.load(both, sources, sets=["flags:reference"]).inserted == 1
    states = {s.name: s.state for s in seeding.status(both, sources)}
    assert states == {"demo": "loaded", "reference": "loaded", "flags:reference": "loaded"}
    assert seeding.remove(both, sources, "flags:reference").deleted == {"feature_flag": 1}
    assert FeatureFlag.select().count() == 0 and Service.select().count() > 0
    with pytest.raises(SeedError, match=r"no seed set named 'defaults' .* \(available: demo, reference, "
                                        r"flags:reference\)"):
        seeding.load(both, sources, sets=["defaults"])


def test_an_apps_file_fills_only_its_own_tables(both: peewee.Database, tmp_path: Path) -> None:
    flags = flag_sets(tmp_path, mine="""
        feature_flag:
          - {service: checkout-api, name: dark-mode}
        team:
          - {name: sneaky}
    """)
    with pytest.raises(SeedError) as caught:
        seeding.load(both, [PLATFORM, flags], sets=["reference", "demo", "flags:mine"])
    assert str(caught.value) == (f"{flags.directory / 'mine.yaml'}, line 5: table 'team' is not one of app "
                                 "'flags''s seed tables: its files fill only feature_flag, deploy_window, and refer to "
                                 "other apps' rows by natural key")
    assert Service.select().count() == 0  # nothing of the platform's sets either: one transaction


def test_a_reference_to_a_platform_row_that_is_not_there_names_file_line_and_field(
        both: peewee.Database, tmp_path: Path) -> None:
    flags = flag_sets(tmp_path, mine="""
        feature_flag:
          - name: dark-mode
            service: no-such-service
    """)
    with pytest.raises(SeedError, match=r"mine.yaml, line 4: feature_flag field 'service': unknown service "
                                        r"'no-such-service'"):
        seeding.load(both, [PLATFORM, flags], sets=["flags:mine"])


def test_removing_a_platform_set_an_apps_rows_refer_to_is_refused(both: peewee.Database) -> None:
    sources = [PLATFORM, SeedSource(FLAGS, EXAMPLE / "seed_data", app="flags")]
    seeding.load(both, sources)
    with pytest.raises(SeedError, match=r"cannot remove set 'demo': its service .* is referred to by feature_flag "
                                        r".* which set 'demo' did not load"):
        seeding.remove(both, sources, "demo")
    assert FeatureFlag.select().count() == 2
    assert seeding.remove(both, sources, "flags:defaults").deleted == {"feature_flag": 2, "deploy_window": 4}
    assert seeding.remove(both, sources, "demo").deleted["service"] > 0


def test_two_apps_cannot_register_one_table(tmp_path: Path) -> None:
    twice = SeedSource(SeedRegistry([SeedTable(Service, key=("name",))]), tmp_path, app="flags")
    with pytest.raises(ConfigurationError, match="seed table 'service' is registered by the platform and by app "
                                                 "'flags'"):
        seeding.load(peewee.SqliteDatabase(":memory:"), [PLATFORM, twice])
