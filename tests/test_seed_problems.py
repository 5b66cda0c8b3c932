"""Every problem of every seed file in one pass, each naming file, line, table and field; nothing written.

A real catalog import with 47 bad rows took 47 runs when the loader stopped at the first. Now one run finds
them all (up to a cap), a row's invalid values come together with its unknown references, a row that refers to
a broken one is not blamed for it, and wrong types in any field are a problem with a file and a line on both
databases, the same on both (a fuzz over every field of every table).
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import peewee
import pytest
import yaml
from click.testing import CliRunner

from orm_kit import seeding
from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.errors import SeedError, SeedProblemsError
from orm_kit.models import MODELS, Team
from orm_kit.platform import SEED_REGISTRY as REGISTRY
from orm_kit.platform import migrate_up, seed_dir

from conftest import reset_postgres
from test_seeding import dump, write_set

TEAMS = "team:\n  - name: platform\n  - name: payments\n    parent: platform\n"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="orm-kit")
    return result.exit_code, result.stdout, result.stderr


def problems_of(error: SeedProblemsError, root: Path) -> list[tuple[str, int | None, str | None, str | None]]:
    return [(str(Path(p.path or "").relative_to(root)), p.line, p.table, p.field) for p in error.problems]


def test_every_problem_of_every_file_comes_in_one_error(migrated: peewee.Database, tmp_path: Path) -> None:
    root = write_set(tmp_path / "seeds", "base", {"teams.yaml": TEAMS})
    write_set(root, "catalog", {
        "a_services.yaml": (
            "service:\n"
            "  - name: checkout-api\n    owner: payments\n    tier: critical\n"          # fine
            "  - name: orders-api\n    owner: paymnts\n    tier: urgent\n"             # 6, 7: both wrong
            "  - name: Search API\n    owner: payments\n    tier: low\n    colour: red\n"  # 8, 11
            "  - name: cart-api\n    owner: platform\n    tier: low\n"                 # fine
            "  - name: cart-api\n    owner: platform\n    tier: low\n"),               # 15: duplicate
        "b_releases.yaml": (
            "release:\n"
            "  - {service: checkout-api, version: 1.0.0, ref: main, commit_sha: xyz}\n"   # 2: bad sha
            "  - {service: orders-api, version: 1.0.0, ref: main, commit_sha: " + "a" * 40 + "}\n"),  # 3: refers to
                                                                                      # a broken row: not blamed
        "c_broken.yaml": "team:\n  - name: [unclosed\n",                                  # YAML syntax
    })
    before = dump(migrated)
    with pytest.raises(SeedProblemsError) as caught:
        seeding.load(migrated, REGISTRY, root)
    error = caught.value
    assert problems_of(error, root) == [
        ("catalog/a_services.yaml", 6, "service", "owner"),
        ("catalog/a_services.yaml", 7, "service", "tier"),
        ("catalog/a_services.yaml", 8, "service", "name"),
        ("catalog/a_services.yaml", 11, "service", "colour"),
        ("catalog/a_services.yaml", 15, "service", "name"),
        ("catalog/b_releases.yaml", 2, "release", "commit_sha"),
        ("catalog/c_broken.yaml", 3, None, None),
    ]
    assert "unknown team 'paymnts'" in error.problems[0].reason
    assert error.problems[0].reason.endswith(f"or it is in {root / 'catalog' / 'c_broken.yaml'}, which could not be "
                                             "read)")
    assert error.problems[1].reason.startswith("must be one of critical, high, medium, low (got 'urgent')")
    assert str(error).startswith("7 problems in the seed files; nothing was written:\n")
    assert str(error).splitlines()[1].startswith(
        f"{root / 'catalog' / 'a_services.yaml'}, line 6: service field 'owner': unknown team 'paymnts': no such row "
        "in the sets being loaded or in the database (check the spelling, or load the set that defines it")
    assert isinstance(error, SeedError) and (error.path, error.line, error.field) == (
        str(root / "catalog" / "a_services.yaml"), 6, "owner")
    assert dump(migrated) == before


def test_a_rows_value_problems_come_with_its_reference_problems(migrated: peewee.Database, tmp_path: Path) -> None:
    root = write_set(tmp_path / "seeds", "one", {"s.yaml": (
        "service:\n  - name: Bad Name\n    owner: nobody\n    tier: urgent\n    repository_url: not a url\n")})
    with pytest.raises(SeedProblemsError) as caught:
        seeding.load(migrated, REGISTRY, root)
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "name"), (3, "owner"), (4, "tier"),
                                                                  (5, "repository_url")]


def test_past_the_cap_the_rest_are_counted(migrated: peewee.Database, tmp_path: Path) -> None:
    rows = "".join(f"  - name: team-{n}\n    email: not-an-address-{n}\n" for n in range(150))
    root = write_set(tmp_path / "seeds", "big", {"teams.yaml": "team:\n" + rows})
    with pytest.raises(SeedProblemsError) as caught:
        seeding.load(migrated, REGISTRY, root)
    assert (len(caught.value.problems), caught.value.more) == (100, 50)
    assert str(caught.value).startswith("150 problems in the seed files")
    assert str(caught.value).endswith("\n... and 50 more")
    with pytest.raises(SeedProblemsError) as capped:
        seeding.load(migrated, REGISTRY, root, max_problems=3)
    assert (len(capped.value.problems), capped.value.more) == (3, 147)
    assert Team.select().count() == 0


def test_the_command_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("--database", url, "migrate")[0] == 0
    root = write_set(tmp_path / "seeds", "bad", {"teams.yaml": (
        "team:\n  - name: Not A Slug\n  - name: fine-team\n    email: nope\n  - name: other\n    parent: ghost\n")})
    code, out, err = run("--database", url, "seed", "--seeds", str(root), "--replace-seeds")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 4 and "Traceback" not in err
    assert lines[0].startswith(f"{root / 'bad' / 'teams.yaml'}, line 2: team field 'name': must be a lowercase slug")
    assert lines[1].startswith(f"{root / 'bad' / 'teams.yaml'}, line 4: team field 'email': ")
    assert lines[2].startswith(f"{root / 'bad' / 'teams.yaml'}, line 6: team field 'parent': unknown team 'ghost'")
    assert lines[3] == "Error: 3 problems in the seed files (each above); nothing was written"
    db = open_database(url)
    assert "orm_kit_seed" not in db.get_tables() or not db.execute_sql('SELECT 1 FROM "orm_kit_seed"').fetchall()
    db.close()


# --- wrong types in every field, on both databases ----------------------------------------------------------

BAD_VALUES: list[Any] = [[], {"a": 1}, True, 2**63, "x" * 300, "2026-13-45", datetime.date(2026, 1, 1),
                         float("nan"), "\x00", b"bytes"]
CERTAINLY_WRONG = ([], {"a": 1})  # wrong for every field of every table


def fuzz_rows() -> tuple[str, str, list[tuple[int, str, str, Any]]]:
    """One YAML document of rows, each a shipped row made new (a key of its own) with one field set to a wrong
    value; the services the new source configs belong to; and (row, table, field, value) for each, in order."""
    templates: dict[str, dict[str, Any]] = {}
    for path in sorted(seed_dir().rglob("*.yaml")):
        for table, rows in (yaml.safe_load(path.read_text()) or {}).items():
            templates.setdefault(table, rows[0])
    services = [row["name"] for row in yaml.safe_load((seed_dir() / "demo" / "services.yaml").read_text())["service"]]
    apis = [row["name"] for row in yaml.safe_load((seed_dir() / "demo" / "apis.yaml").read_text())["api"]]
    documents: dict[str, list[dict[str, Any]]] = {}
    owners: list[dict[str, Any]] = []
    cases: list[tuple[int, str, str, Any]] = []
    n = 0
    for table, template in templates.items():
        fields = sorted({*template, *(f.name for f in REGISTRY.by_name[table].model._meta.sorted_fields)} - {"id"})
        fields = [f for f in fields if f not in ("lock_version", "duration_seconds")]  # refused on their own
        for field in fields:
            for value in BAD_VALUES:
                n += 1
                row = copy.deepcopy(template)
                row.update({
                    "team": {"name": f"fuzz-{n}"}, "environment": {"slug": f"fz{n}", "name": f"Fuzz {n}"},
                    "service": {"name": f"fuzz-{n}"}, "api": {"name": f"fuzz-{n}"},
                    "release": {"version": f"9.{n}.0"}, "deployment": {"key": f"fuzz/{n}"},
                    "incident": {"opened_at": datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC)
                                 + datetime.timedelta(minutes=n)},
                    "service_dependency": {"service": services[n % 12], "depends_on": services[(n // 12 + n + 1) % 12]},
                    "service_api_consumer": {"service": services[n % 12], "api": apis[(n // 12) % len(apis)]},
                    "service_source_config": {"service": f"cfg-{n}"},
                }[table])
                if table == "service_source_config":
                    owners.append({"name": f"cfg-{n}", "owner": "sre", "tier": "low"})
                row[field] = value
                documents.setdefault(table, []).append(row)
                cases.append((n, table, field, value))
    return (yaml.dump(documents, Dumper=_NoAliases, allow_unicode=True, sort_keys=False),
            yaml.safe_dump({"service": owners}), cases)


class _NoAliases(yaml.SafeDumper):
    """Every value written out where it is used (an alias would carry its anchor's line, not the row's)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def test_wrong_types_in_every_field_are_problems_with_a_line_the_same_on_both_databases(
        postgres_url: str, tmp_path: Path) -> None:
    text, owners, cases = fuzz_rows()
    root = write_set(tmp_path / "seeds", "fuzz", {"fuzz.yaml": text, "owners.yaml": owners})
    found: dict[str, list[tuple[int | None, str | None, str | None, str]]] = {}
    for backend, url in (("sqlite", f"sqlite:///{tmp_path / 'fuzz.db'}"), ("postgres", postgres_url)):
        if backend == "postgres":
            reset_postgres(url)
        db = open_database(url)
        db.bind(MODELS)
        try:
            migrate_up(db)
            seeding.load(db, REGISTRY, seed_dir())
            before = dump(db)
            with pytest.raises(SeedProblemsError) as caught:  # any other exception fails the test: a crash
                seeding.load(db, REGISTRY, root, ["fuzz"], max_problems=100_000)
            assert dump(db) == before
        finally:
            db.close()
        assert caught.value.more == 0
        found[backend] = [(p.line, p.table, p.field, p.reason) for p in caught.value.problems]
        assert all(p.path == str(root / "fuzz" / "fuzz.yaml") and p.line for p in caught.value.problems)
    assert found["sqlite"] == found["postgres"]  # the same problems, word for word, whatever the database
    lines = {line for line, _, _, _ in found["sqlite"]}
    for (_, table, field, value), (start, end) in zip(cases, _spans(text, cases), strict=True):
        if value in CERTAINLY_WRONG:
            assert any(start <= line <= end for line in lines), (table, field, value)
    reset_postgres(postgres_url)


def _spans(text: str, cases: list[tuple[int, str, str, Any]]) -> list[tuple[int, int]]:
    """The first and last line of each fuzzed row in the document (rows are in case order per table)."""
    node = yaml.compose(text)
    spans: dict[str, list[tuple[int, int]]] = {}
    assert isinstance(node, yaml.MappingNode)
    for key, rows in node.value:
        spans[key.value] = [(row.start_mark.line + 1, row.end_mark.line) for row in rows.value]
    taken: dict[str, int] = {}
    out = []
    for _, table, _, _ in cases:
        index = taken.get(table, 0)
        taken[table] = index + 1
        out.append(spans[table][index])
    return out
