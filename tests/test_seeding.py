"""The seed loader on SQLite and PostgreSQL: idempotent, exact updates, one precise error, nothing half-written."""

from __future__ import annotations

import datetime
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import peewee
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orm_kit.db import open_database
from orm_kit.errors import ConflictError, SeedError, SeedProblemsError
from orm_kit.locking import Versioned
from orm_kit.model import Model
from orm_kit.models import MODELS, Deployment, Environment, Incident, Release, Service, ServiceDependency, Team
from orm_kit.platform import SEED_REGISTRY as REGISTRY
from orm_kit.platform import migrate_up
from orm_kit.platform import seed_dir as default_seed_dir
from orm_kit.seeding import SeedRegistry, SeedTable, load, remove, status, uuid_for

UTC = datetime.UTC


def dump(db: peewee.Database) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table (bookkeeping included), as text, in a stable order."""
    tables: dict[str, list[tuple[str, ...]]] = {}
    for table in sorted(db.get_tables()):
        cursor = db.execute_sql(f'SELECT * FROM "{table}"')
        tables[table] = sorted(tuple(str(v) for v in row) for row in cursor.fetchall())
    return tables


def changed_rows(before: dict[str, list[tuple[str, ...]]], after: dict[str, list[tuple[str, ...]]]) -> dict[str, Any]:
    """Per table, the rows only in ``before`` and only in ``after``."""
    diff = {}
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            diff[table] = (sorted(old - new), sorted(new - old))
    return diff


def write_set(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        (folder / filename).write_text(text)
    return root


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A private copy of the shipped seed sets, safe to edit."""
    target = tmp_path / "seeds"
    shutil.copytree(default_seed_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def test_shipped_sets_load_everything_then_a_second_load_changes_nothing(migrated: peewee.Database) -> None:
    first = load(migrated, REGISTRY, default_seed_dir())
    assert first.sets == ("demo", "reference")
    assert first.inserted == 232 and first.updated == 0 and first.unchanged == 0
    before = dump(migrated)
    again = load(migrated, REGISTRY, default_seed_dir())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 232)
    assert again.changes == ()
    assert dump(migrated) == before


def test_demo_data_gives_every_platform_question_an_answer(migrated: peewee.Database) -> None:
    first_load = datetime.datetime.now(UTC)
    load(migrated, REGISTRY, default_seed_dir())
    # every environment tier, a team tree at least three levels deep
    assert {e.tier for e in Environment.select()} == {"production", "staging", "testing", "development", "other"}
    depth = max(len(_ancestry(team)) for team in Team.select())
    assert depth >= 3
    # dependency graph both ways, with a cycle for the graph queries to survive
    gateway = Service.get(Service.name == "payments-gateway")
    assert {link.depends_on.name for link in gateway.dependency_links} >= {"ledger", "fraud-scoring"}
    assert {link.service.name for link in gateway.dependent_links} >= {"checkout-api", "ledger"}
    # history over several weeks, with failures, rollbacks and incidents they caused
    times = [d.created_at for d in Deployment.select()]
    assert max(times) - min(times) >= datetime.timedelta(weeks=4)
    statuses = {d.status for d in Deployment.select()}
    assert {"success", "failed", "canceled", "running", "blocked"} <= statuses
    rollbacks = list(Deployment.select().where(Deployment.rollback_of.is_null(False)))
    assert len(rollbacks) == 2
    for rollback in rollbacks:
        bad = rollback.rollback_of
        assert bad.environment_id == rollback.environment_id and bad.service_id == rollback.service_id
        assert rollback.release.version != bad.release.version  # rolled back to an earlier release
        assert bad.incidents.count() == 1
    assert Incident.select().where(Incident.caused_by.is_null()).count() >= 1
    assert Incident.select().where(Incident.resolved_at.is_null()).count() == 1
    # a commit that reached several environments; its deployment id is derived from the file's key
    checkout = Service.get(Service.name == "checkout-api")
    release = Release.get((Release.service == checkout) & (Release.version == "1.3.2"))
    assert {d.environment.slug for d in release.deployments} == {"dev", "staging", "prod", "prod-us"}
    assert Deployment.get_by_id(uuid_for("deployment", "checkout-api/prod/1")).release.version == "1.3.0"
    # the history reads in order: a team before its sub-teams and services, a service before its work
    for team in Team.select().where(Team.parent.is_null(False)):
        assert team.parent.created_at < team.created_at, team.name
    for svc in Service.select():
        assert svc.owner.created_at < svc.created_at < first_load, svc.name
        for release in svc.releases:
            assert svc.created_at < min(t for t in (release.committed_at, release.created_at) if t), release.version
        for deployment in svc.deployments:
            assert svc.created_at < deployment.created_at, svc.name


def _ancestry(team: Team) -> list[str]:
    names = [team.name]
    while team.parent_id is not None:
        team = team.parent
        names.append(team.name)
    return names


def test_an_edit_updates_exactly_the_rows_it_changed(migrated: peewee.Database, seeds: Path) -> None:
    load(migrated, REGISTRY, seeds)
    before = dump(migrated)
    services = seeds / "demo" / "services.yaml"
    services.write_text(services.read_text().replace(
        "description: Shopping carts.", "description: Shopping carts and saved baskets."))
    environments = seeds / "reference" / "environments.yaml"
    environments.write_text(environments.read_text().replace("region: us-east-1", "region: us-east-2"))
    result = load(migrated, REGISTRY, seeds)
    assert [(c.table, c.key, c.action, c.fields) for c in result.changes] == [
        ("environment", "'prod-us'", "update", ("region",)),
        ("service", "'cart-service'", "update", ("description",)),
    ]
    assert (result.inserted, result.updated, result.unchanged) == (0, 2, 230)
    diff = changed_rows(before, dump(migrated))
    assert set(diff) == {"environment", "service", "orm_kit_seed"}
    for table in ("environment", "service"):
        old, new = diff[table]
        assert len(old) == len(new) == 1
    cart = Service.get(Service.name == "cart-service")
    assert cart.description == "Shopping carts and saved baskets."
    assert cart.updated_at > cart.created_at  # touched
    assert Environment.get(Environment.slug == "prod-us").region == "us-east-2"


def test_a_seed_update_moves_the_version_so_an_applications_stale_copy_conflicts(
        migrated: peewee.Database, seeds: Path) -> None:
    load(migrated, REGISTRY, seeds)
    stale = Service.get(Service.name == "cart-service")
    assert stale.lock_version == 1
    services = seeds / "demo" / "services.yaml"
    services.write_text(services.read_text().replace("description: Shopping carts.", "description: Baskets."))
    load(migrated, REGISTRY, seeds)
    assert Service.get(Service.name == "cart-service").lock_version == 2
    stale.description = "an edit made on a copy read before the seed"
    with pytest.raises(ConflictError):
        stale.save()
    assert Service.get(Service.name == "cart-service").description == "Baskets."
    assert load(migrated, REGISTRY, seeds).changes == ()  # the version is the loader's, never a difference


class Gadget(Versioned, Model):
    """A versioned table whose UPDATE path lets the test change the row under the loader's feet."""

    name = peewee.CharField(unique=True)
    note = peewee.CharField(null=True)
    lock_version = peewee.IntegerField(default=1)
    interfere = False

    @classmethod
    def derive(cls, data: dict[str, Any], *, partial: bool = False) -> None:
        if partial and cls.interfere:  # another writer commits between the loader's read and its UPDATE
            cls._meta.database.execute_sql('UPDATE "gadget" SET "lock_version" = "lock_version" + 1')


def test_a_row_changed_between_the_loaders_read_and_write_is_a_seed_error(
        migrated: peewee.Database, tmp_path: Path) -> None:
    migrated.bind([Gadget])
    migrated.create_tables([Gadget])
    registry = SeedRegistry([SeedTable(Gadget, key=("name",))])
    root = write_set(tmp_path / "seeds", "gadgets", {"g.yaml": "gadget:\n  - {name: g1, note: one}\n"})
    load(migrated, registry, root)
    write_set(root, "gadgets", {"g.yaml": "gadget:\n  - {name: g1, note: two}\n"})
    Gadget.interfere = True
    try:
        with pytest.raises(SeedError, match=r"changed or deleted by someone else .*lock_version 1 is stale"):
            load(migrated, registry, root)
    finally:
        Gadget.interfere = False
    assert [(g.note, g.lock_version) for g in Gadget.select()] == [("one", 1)]  # rolled back, interference too
    load(migrated, registry, root)
    assert [(g.note, g.lock_version) for g in Gadget.select()] == [("two", 2)]


GOOD_TEAMS = "team:\n  - name: platform\n  - name: payments\n    parent: platform\n"

BAD_FILES = [
    # (case, file text, expected line, expected field, words in the reason)
    ("yaml syntax", "team:\n  - name: fresh\n  - name: [unclosed\n    email: x@example.com\n", 4, None,
     "not valid YAML"),
    ("unknown table", "team:\n  - name: fresh\nteams:\n  - name: other\n", 4, None, "unknown table 'teams'"),
    ("unknown field", "team:\n  - name: fresh\n  - name: other\n    colour: red\n", 4, "colour", "not a field of team"),
    ("numeric id", "team:\n  - name: fresh\n  - id: 7\n    name: other\n", 3, "id", "natural key"),
    ("raw foreign key", "team:\n  - name: fresh\n    parent_id: 1\n", 3, "parent_id", "write 'parent'"),
    ("unknown reference", "team:\n  - name: fresh\nservice:\n  - name: api\n    tier: low\n    owner: paymnts\n",
     6, "owner", "unknown team 'paymnts'"),
    ("invalid value", "team:\n  - name: fresh\nservice:\n  - name: api\n    owner: fresh\n    tier: urgent\n",
     6, "tier", "must be one of critical, high, medium, low (got 'urgent')"),
    ("invalid type", "team:\n  - name: fresh\n    display_name: 42\n", 3, "display_name", "must be text"),
    ("cross-field rule", "environment:\n  - {slug: e1, name: E1, tier: other}\nincident:\n  - service: api\n"
     "    environment: e1\n    severity: sev2\n    title: down\n    opened_at: 2026-01-02 10:00:00Z\n"
     "    resolved_at: 2026-01-01 10:00:00Z\nservice:\n  - {name: api, owner: platform, tier: low}\n",
     9, "resolved_at", "must be at or after opened_at"),
    ("duplicate natural key", "team:\n  - name: fresh\n  - name: other\n  - name: fresh\n", 4, "name",
     "duplicate natural key 'fresh'"),
    ("duplicate of another file", "team:\n  - name: payments\n", 2, "name", "already defined at"),
    ("unique column",
     "environment:\n  - {slug: one, name: Same, tier: other}\n  - {slug: two, name: Same, tier: other}\n", 3,
     "name", "has already been taken"),
    ("missing natural key", "team:\n  - display_name: Nobody\n", 2, "name", "part of the natural key"),
    ("reference cycle", "team:\n  - name: aa\n    parent: bb\n  - name: bb\n    parent: aa\n", 2, "parent", "cycle"),
    ("not a list", "team:\n  name: fresh\n", 2, None, "must be a list of rows"),
    ("impossible date", "team:\n  - name: fresh\n    created_at: 2026-13-45\n", 3, "created_at",
     "'2026-13-45' is not a valid value: month must be in 1..12"),
    ("impossible time", "team:\n  - name: fresh\n  - name: other\n    created_at: 2026-01-01 25:00:00Z\n", 4,
     "created_at", "is not a valid value: hour must be in 0..23"),
    ("derived field", "deployment:\n  - key: d1\n    service: api\n    environment: e1\n"
     "    started_at: 2026-01-01 10:00:00Z\n    finished_at: 2026-01-01 10:05:00Z\n    duration_seconds: 5\n"
     "environment:\n  - {slug: e1, name: E1, tier: other}\nservice:\n  - {name: api, owner: platform, tier: low}\n",
     7, "duration_seconds", "is computed from started_at and finished_at whenever the row is written; remove it"),
    ("version field", "environment:\n  - {slug: e1, name: E1, tier: other}\nservice:\n  - name: api\n"
     "    owner: platform\n    tier: low\n    lock_version: 7\n", 7, "lock_version",
     "is the optimistic-locking version"),
    ("duplicate in another spelling", "environment:\n  - {slug: e1, name: E1, tier: other}\nincident:\n"
     "  - {service: api, environment: e1, severity: sev2, title: a, opened_at: 2026-01-02 10:00:00Z}\n"
     "  - service: api\n    environment: e1\n    severity: sev3\n    title: b\n"
     "    opened_at: 2026-01-02 11:00:00+01:00\nservice:\n  - {name: api, owner: platform, tier: low}\n",
     9, "opened_at", "duplicate natural key"),
    ("release of another service", "environment:\n  - {slug: e1, name: E1, tier: other}\n"
     "service:\n  - {name: api, owner: platform, tier: low}\n  - {name: web, owner: platform, tier: low}\n"
     "release:\n  - {service: web, version: 1.0.0, ref: main, commit_sha: " + "a" * 40 + "}\n"
     "deployment:\n  - key: d1\n    service: api\n    environment: e1\n    release: {service: web, version: 1.0.0}\n",
     12, "release", "must be a release of this row's own service 'api' (got service 'web'); give just its version"),
    ("field twice", "team:\n  - name: fresh\n    name: again\n", 3, "name", "given twice"),
]


@pytest.mark.parametrize(("text", "line", "field", "reason"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_one_error_naming_file_line_and_field_and_changes_nothing(
        migrated: peewee.Database, tmp_path: Path, text: str, line: int, field: str | None, reason: str) -> None:
    root = write_set(tmp_path / "seeds", "base", {"teams.yaml": GOOD_TEAMS})
    load(migrated, REGISTRY, root)
    write_set(root, "extra", {"bad.yaml": text})
    before = dump(migrated)
    with pytest.raises(SeedError) as caught:
        load(migrated, REGISTRY, root)
    error = caught.value
    assert error.path == str(root / "extra" / "bad.yaml")
    assert (error.line, error.field) == (line, field)
    assert reason in error.reason
    assert str(error).startswith(f"{root / 'extra' / 'bad.yaml'}, line {line}: ")
    assert dump(migrated) == before


def test_a_failure_on_the_500th_row_of_a_large_file_loads_nothing(migrated: peewee.Database, tmp_path: Path) -> None:
    lines = ["team:"]
    for n in range(1, 1001):
        lines.append(f"  - name: team-{n}")
        lines.append(f"    email: {'not-an-address' if n == 500 else f'team-{n}@example.com'}")
    root = write_set(tmp_path / "seeds", "big", {"teams.yaml": "\n".join(lines) + "\n"})
    before = dump(migrated)
    with pytest.raises(SeedError) as caught:
        load(migrated, REGISTRY, root)
    assert (caught.value.line, caught.value.field, caught.value.table) == (1 + 2 * 500, "email", "team")
    assert "not a valid email address" in caught.value.reason
    assert dump(migrated) == before
    assert Team.select().count() == 0


CROSS = {
    "people": {"teams.yaml": GOOD_TEAMS,
               "environments.yaml": "environment:\n  - {slug: prod, name: Production, tier: production}\n"},
    "things": {
        "a_deployments.yaml": "deployment:\n"
                              "  - {key: d1, service: api, environment: prod, release: 1.0.0, status: success}\n"
                              "  - {key: d2, service: api, environment: prod, release: 0.9.0, status: success,"
                              " rollback_of: d1}\n",
        "b_releases.yaml": "release:\n  - {service: api, version: 1.0.0, ref: main, commit_sha: " + "a" * 40 + "}\n"
                           "  - {service: api, version: 0.9.0, ref: main, commit_sha: " + "b" * 40 + "}\n",
        "c_services.yaml": "service:\n  - {name: api, owner: payments, tier: high}\n",
    },
}


def test_references_resolve_across_files_and_across_sets(migrated: peewee.Database, tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    for name, files in CROSS.items():
        write_set(root, name, files)
    # one set at a time: the second set's references are found in the database
    load(migrated, REGISTRY, root, ["people"])
    result = load(migrated, REGISTRY, root, ["things"])
    assert result.inserted == 5
    rollback = Deployment.get_by_id(uuid_for("deployment", "d2"))
    assert rollback.rollback_of_id == uuid_for("deployment", "d1")
    assert rollback.release.version == "0.9.0" and rollback.service.owner.parent.name == "platform"
    # both at once, in files listed children-first: the registry's order still loads parents first
    load(migrated, REGISTRY, root)
    assert ServiceDependency.select().count() == 0 and Release.select().count() == 2


def test_a_reference_to_a_set_not_loaded_names_the_fix(migrated: peewee.Database, tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    for name, files in CROSS.items():
        write_set(root, name, files)
    with pytest.raises(SeedProblemsError) as caught:
        load(migrated, REGISTRY, root, ["things"])
    # Every unknown reference at once: the deployments' environment and the service's owner (the releases and
    # deployments of that service are checked, not blamed for it).
    assert [(p.table, p.field) for p in caught.value.problems] == [
        ("deployment", "environment"), ("deployment", "environment"), ("service", "owner")]
    assert all("load the set that defines it" in str(p) for p in caught.value.problems)


def test_dry_run_reports_and_writes_nothing(migrated: peewee.Database, seeds: Path) -> None:
    empty = dump(migrated)
    result = load(migrated, REGISTRY, seeds, dry_run=True)
    assert result.dry_run and result.inserted == 232
    assert dump(migrated) == empty
    load(migrated, REGISTRY, seeds)
    loaded = dump(migrated)
    teams = seeds / "reference" / "teams.yaml"
    teams.write_text(teams.read_text().replace("display_name: Fraud Prevention", "display_name: Fraud"))
    result = load(migrated, REGISTRY, seeds, ["reference"], dry_run=True)
    assert [(c.key, c.action, c.fields) for c in result.changes] == [("'fraud'", "update", ("display_name",))]
    assert remove(migrated, REGISTRY, "demo", dry_run=True).deleted["deployment"] == 114
    assert dump(migrated) == loaded


def test_status_tells_loaded_changed_and_new_sets(migrated: peewee.Database, seeds: Path) -> None:
    assert [(s.name, s.state, s.rows) for s in status(migrated, REGISTRY, seeds)] == [
        ("demo", "not loaded", 0), ("reference", "not loaded", 0)]
    load(migrated, REGISTRY, seeds, ["reference"])
    teams = seeds / "reference" / "teams.yaml"
    teams.write_text(teams.read_text() + "  - name: newcomers\n    parent: data\n")
    write_set(seeds, "later", {"x.yaml": "team:\n  - name: later\n"})
    assert [(s.name, s.state, s.rows) for s in status(migrated, REGISTRY, seeds)] == [
        ("demo", "not loaded", 0), ("later", "not loaded", 0), ("reference", "changed", 17)]
    load(migrated, REGISTRY, seeds, ["reference"])
    assert [(s.name, s.state, s.rows) for s in status(migrated, REGISTRY, seeds)][2] == ("reference", "loaded", 18)
    shutil.rmtree(seeds / "reference")
    assert [s.state for s in status(migrated, REGISTRY, seeds)][2] == "files missing"


def test_remove_deletes_only_the_sets_own_rows(migrated: peewee.Database, seeds: Path) -> None:
    load(migrated, REGISTRY, seeds, ["reference"])
    Team.create(name="by-hand", parent=Team.get(Team.name == "platform"))
    before_demo = dump(migrated)
    load(migrated, REGISTRY, seeds, ["demo"])
    result = remove(migrated, REGISTRY, "demo")
    assert result.deleted == {"incident": 6, "deployment": 114, "release": 34, "service_source_config": 10,
                              "service_api_consumer": 13, "api": 9, "service_dependency": 17, "service": 12}
    assert dump(migrated) == before_demo
    assert [s.state for s in status(migrated, REGISTRY, seeds)] == ["not loaded", "loaded"]


def test_remove_keeps_its_in_lists_under_a_lowered_sqlite_variable_limit(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'limit.db'}")
    db.bind(MODELS)
    migrate_up(db)
    load(db, REGISTRY, default_seed_dir())
    db.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 50)  # the demo set has 114 deployments
    assert remove(db, REGISTRY, "demo").deleted["deployment"] == 114
    assert Deployment.select().count() == 0
    db.close()


def test_remove_leaves_alone_a_row_that_took_over_the_id_of_a_row_the_set_inserted(
        migrated: peewee.Database, tmp_path: Path) -> None:
    root = write_set(tmp_path / "seeds", "base", {"teams.yaml": GOOD_TEAMS})
    write_set(root, "later", {"x.yaml": "team:\n  - name: later\n"})
    load(migrated, REGISTRY, root)
    taken = Team.get(Team.name == "later").id
    Team.delete().where(Team.id == taken).execute()  # by hand; SQLite gives the id to the next insert
    Team.create(id=taken, name="hand-made")
    assert [(s.name, s.rows) for s in status(migrated, REGISTRY, root)] == [("base", 2), ("later", 0)]
    before = dump(migrated)
    assert remove(migrated, REGISTRY, "later", dry_run=True).gone == {"team": 1}
    result = remove(migrated, REGISTRY, "later")
    assert (result.deleted, result.gone) == ({}, {"team": 1})
    assert Team.get_by_id(taken).name == "hand-made"
    assert changed_rows(before, dump(migrated)).keys() == {"orm_kit_seed", "orm_kit_seed_row"}  # bookkeeping only
    # loaded again, the row is inserted anew; the set owns the new id only
    load(migrated, REGISTRY, root, ["later"])
    Team.delete().where(Team.name == "later").execute()
    load(migrated, REGISTRY, root, ["later"])
    assert [(s.name, s.rows) for s in status(migrated, REGISTRY, root)] == [("base", 2), ("later", 1)]
    result = remove(migrated, REGISTRY, "later")
    assert (result.deleted, result.gone) == ({"team": 1}, {})
    assert sorted(t.name for t in Team.select()) == ["hand-made", "payments", "platform"]


def test_bookkeeping_from_before_natural_keys_still_works_and_is_upgraded(
        migrated: peewee.Database, tmp_path: Path) -> None:
    migrated.execute_sql('CREATE TABLE "orm_kit_seed" ("name" VARCHAR(255) PRIMARY KEY, '
                         '"checksum" VARCHAR(64) NOT NULL, "loaded_at" TEXT NOT NULL)')
    migrated.execute_sql('CREATE TABLE "orm_kit_seed_row" ("set_name" VARCHAR(255) NOT NULL, "table_name" '
                         'VARCHAR(255) NOT NULL, "row_key" VARCHAR(255) NOT NULL, '
                         'PRIMARY KEY ("set_name", "table_name", "row_key"))')
    old = Team.create(name="old")
    migrated.execute_sql('INSERT INTO "orm_kit_seed" VALUES (?, ?, ?)'.replace("?", migrated.param),
                         ["old", "x", "2026-01-01T00:00:00+00:00"])
    migrated.execute_sql('INSERT INTO "orm_kit_seed_row" VALUES (?, ?, ?)'.replace("?", migrated.param),
                         ["old", "team", str(old.id)])
    root = write_set(tmp_path / "seeds", "base", {"teams.yaml": GOOD_TEAMS})
    assert [(s.name, s.rows) for s in status(migrated, REGISTRY, root)] == [("base", 0), ("old", 1)]
    load(migrated, REGISTRY, root)
    assert [(s.name, s.rows) for s in status(migrated, REGISTRY, root)] == [("base", 2), ("old", 1)]
    assert remove(migrated, REGISTRY, "old").deleted == {"team": 1}
    assert remove(migrated, REGISTRY, "base").deleted == {"team": 2}


def test_remove_refuses_when_other_rows_refer_to_the_set_and_changes_nothing(
        migrated: peewee.Database, seeds: Path) -> None:
    load(migrated, REGISTRY, seeds, ["reference"])
    Service.create(name="by-hand", tier="low", owner=Team.get(Team.name == "fraud"))
    before = dump(migrated)
    with pytest.raises(SeedError) as caught:
        remove(migrated, REGISTRY, "reference")
    assert "team 'fraud' is referred to by service 'by-hand'" in str(caught.value)
    assert dump(migrated) == before
    with pytest.raises(SeedError, match="not loaded"):
        remove(migrated, REGISTRY, "demo")


def test_an_unmigrated_database_names_the_fix(db: peewee.Database) -> None:
    with pytest.raises(SeedError, match=r"table 'team' does not exist .*run `orm-kit migrate` first"):
        load(db, REGISTRY, default_seed_dir())
    assert db.get_tables() == []


def test_unknown_set_and_missing_folder_are_seed_errors(migrated: peewee.Database, tmp_path: Path) -> None:
    with pytest.raises(SeedError, match=r"no seed set named 'nope' .*available: demo, reference"):
        load(migrated, REGISTRY, default_seed_dir(), ["nope"])
    with pytest.raises(SeedError, match="does not exist"):
        load(migrated, REGISTRY, tmp_path / "absent")


@st.composite
def team_forests(draw: st.DrawFn) -> list[tuple[str, str | None]]:
    """Teams named t0..tn, each under an earlier team or none, listed in a random order."""
    count = draw(st.integers(min_value=1, max_value=25))
    teams = [(f"t{n}", draw(st.one_of(st.none(), st.sampled_from([f"t{p}" for p in range(n)]))) if n else None)
             for n in range(count)]
    return draw(st.permutations(teams))


@settings(max_examples=25, deadline=None)
@given(forest=team_forests(), split=st.integers(min_value=0, max_value=25))
def test_any_team_forest_in_any_order_and_files_loads_parents_first_and_idempotently(
        forest: list[tuple[str, str | None]], split: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [f"  - name: {name}" + (f"\n    parent: {parent}" if parent else "") for name, parent in forest]
        write_set(root, "trees", {"a.yaml": "team:\n" + "\n".join(rows[:split]) + "\n",
                                  "b.yaml": "team:\n" + "\n".join(rows[split:]) + "\n"})
        db = open_database("sqlite:///:memory:")
        db.bind(MODELS)
        migrate_up(db)
        assert load(db, REGISTRY, root).inserted == len(forest)
        parents = {team.name: team.parent.name if team.parent_id else None for team in Team.select()}
        assert parents == dict(forest)
        before = dump(db)
        assert load(db, REGISTRY, root).changes == ()
        assert dump(db) == before
        db.close()


def test_dry_runs_inside_a_callers_transaction_roll_back_only_their_own_writes(migrated: peewee.Database,
                                                                                seeds: Path) -> None:
    # Nested, the dry run's db.atomic() is a savepoint: rolling it back must keep the caller's work.
    from orm_kit.transactions import transaction

    load(migrated, REGISTRY, seeds, ["reference"])
    before = dump(migrated)
    with transaction(migrated):
        Team.create(name="caller")
        assert load(migrated, REGISTRY, seeds, ["demo"], dry_run=True).inserted == 215
        assert remove(migrated, REGISTRY, "reference", dry_run=True).deleted["team"] == 11
    with migrated.atomic():
        assert load(migrated, REGISTRY, seeds, ["demo"], dry_run=True).inserted == 215
    after = dump(migrated)
    assert changed_rows(before, after) == {"team": ([], [r for r in after["team"] if "caller" in r])}
    assert [s.state for s in status(migrated, REGISTRY, seeds)] == ["not loaded", "loaded"]
