"""migrate lint: every rule on a statement that locks a table in use, the opt-out, and what is left alone.

The rules judge PostgreSQL's locks; on SQLite (the local database) lint says so and finds nothing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.migrate import Runner, check, lint
from orm_kit.migrate.lint import RULES
from orm_kit.models import MODELS
from orm_kit.platform import migrate_up, migrations_dir

BASE = '''
def up(migrator, db):
    db.execute_sql("CREATE TABLE owner (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    db.execute_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20), n INTEGER NOT NULL, "
                   "owner_id INTEGER)")
'''


class Item(peewee.Model):
    """Today's model of `item`: the code reads these columns."""

    label = peewee.CharField(max_length=20, null=True)
    n = peewee.IntegerField()
    owner_id = peewee.IntegerField(null=True)

    class Meta:
        table_name = "item"


# One migration per rule, each a statement that locks `item` (25 rows) the way the rule describes.
CASES = {
    "non-concurrent-index": ["CREATE INDEX item_label ON item (label)"],
    "constraint-without-not-valid": ["ALTER TABLE item ADD CONSTRAINT item_n_positive CHECK (n > 0)"],
    "validate-in-same-transaction": ["ALTER TABLE item ADD CONSTRAINT item_n_positive CHECK (n > 0) NOT VALID",
                                     "ALTER TABLE item VALIDATE CONSTRAINT item_n_positive"],
    "set-not-null": ["ALTER TABLE item ALTER COLUMN owner_id SET NOT NULL"],
    "not-null-without-default": ["ALTER TABLE item ADD COLUMN rank INTEGER NOT NULL"],
    "volatile-default": ["ALTER TABLE item ADD COLUMN token UUID DEFAULT gen_random_uuid()"],
    "column-type-change": ["ALTER TABLE item ALTER COLUMN n TYPE BIGINT"],
    "rename-column": ["ALTER TABLE item RENAME COLUMN label TO title"],
    "rename-table": ["ALTER TABLE item RENAME TO items"],
    "drop-column-in-use": ["ALTER TABLE item DROP COLUMN label"],
    "drop-table-in-use": ["DROP TABLE item"],
    "backfill-in-transaction": ["UPDATE item SET label = 'x' WHERE label IS NULL"],
    "unique-constraint-under-lock": ["ALTER TABLE item ADD CONSTRAINT item_n_key UNIQUE (n)"],
    "full-table-lock": ["LOCK TABLE item IN SHARE MODE"],
    "cascade": ["ALTER TABLE owner DROP COLUMN name CASCADE"],
}


def write(folder: Path, name: str, statements: list[str], header: str = "") -> None:
    body = "\n".join(f"db.execute_sql({sql!r})" for sql in statements) or "pass"
    (folder / f"{name}.py").write_text(textwrap.dedent(header) + "\n\ndef up(migrator, db):\n"
                                       + textwrap.indent(body, "    ") + "\n")


@pytest.fixture
def folder(tmp_path: Path, pg: peewee.Database) -> Path:
    """0001 applied: `owner` (2 rows) and `item` (25 rows), the rows written live, after the migration."""
    path = tmp_path / "migrations"
    path.mkdir()
    (path / "0001_base.py").write_text(BASE)
    assert Runner(pg, path).up() == ["0001_base"]
    pg.execute_sql("INSERT INTO owner (id, name) VALUES (1, 'a'), (2, 'b')")
    pg.execute_sql("INSERT INTO item (id, label, n, owner_id) SELECT i, 'x', i, 1 + mod(i, 2) "
                   "FROM generate_series(1, 25) AS i")
    return path


def test_every_rule_has_a_case_and_says_why_and_what_instead() -> None:
    assert set(CASES) == set(RULES)
    assert all(rule.why and rule.recipe for rule in RULES.values())


@pytest.mark.postgres
@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_finds_its_statement_with_the_tables_size(pg: peewee.Database, folder: Path, rule: str) -> None:
    write(folder, "0002_change", CASES[rule])
    report = lint(pg, folder, [Item])
    (finding,) = report.findings
    table = "owner" if rule == "cascade" else "item"
    assert (finding.migration, finding.rule, finding.table, finding.rows) == ("0002_change", rule, table,
                                                                             2 if table == "owner" else 25)
    assert finding.statement == CASES[rule][-1]
    assert (finding.why, finding.recipe) == (RULES[rule].why, RULES[rule].recipe)
    assert str(finding).startswith(f"0002_change: {rule} on {table} ({finding.rows} rows): {CASES[rule][-1]}: ")
    assert not report.ok and report.unsafe == [finding]


@pytest.mark.postgres
def test_the_safe_forms_and_new_tables_pass(pg: peewee.Database, folder: Path) -> None:
    (folder / "0002_safe.py").write_text(textwrap.dedent('''
        import peewee


        def up(migrator, db):
            migrator.migrate(
                migrator.add_column("item", "region", peewee.CharField(max_length=16, default="eu", index=True)),
                migrator.add_constraint("item", "item_n_positive", peewee.Check("n > 0")),
                migrator.add_foreign_key_constraint("item", "owner_id", "owner", "id"),
                migrator.backfill("item", {"label": "none"}, where='"label" IS NULL'),
                migrator.add_not_null("item", "label"),
                migrator.add_unique("item", "n"),
            )
            db.execute_sql("CREATE TABLE tag (id INTEGER PRIMARY KEY, name VARCHAR(20))")
            db.execute_sql("CREATE INDEX tag_name ON tag (name)")  # a new table: nobody is using it yet
            db.execute_sql("INSERT INTO tag (id, name) SELECT id, label FROM item")
            db.execute_sql("ALTER TABLE item ALTER COLUMN label TYPE VARCHAR(40)")  # widening a varchar is free
    '''))
    report = lint(pg, folder, [Item])
    assert report.findings == [] and report.ok and report.checked == ["0002_safe"]


@pytest.mark.postgres
def test_an_opt_out_needs_a_known_rule_and_a_reason(pg: peewee.Database, folder: Path) -> None:
    write(folder, "0002_small", CASES["backfill-in-transaction"],
          header='lint_ignore = {"backfill-in-transaction": "item holds 25 rows everywhere we run"}\n')
    report = lint(pg, folder, [Item])
    (finding,) = report.findings
    assert finding.ignored == "item holds 25 rows everywhere we run" and report.ok and report.unsafe == []
    assert str(finding).endswith(" [ignored: item holds 25 rows everywhere we run]")
    write(folder, "0002_small", CASES["backfill-in-transaction"],
          header='lint_ignore = {"backfill-in-transaction": " ", "no-such-rule": "because"}\n')
    report = lint(pg, folder, [Item])
    assert not report.ok and report.findings[0].ignored is None
    assert report.problems == [
        "0002_small.py: lint_ignore[\"backfill-in-transaction\"] gives no reason: say why it is safe here, for the "
        "reviewer".replace('"', "'"),
        "0002_small.py: lint_ignore names 'no-such-rule', which is no lint rule (known: backfill-in-transaction, "
        "cascade, column-type-change, constraint-without-not-valid, drop-column-in-use, drop-table-in-use, "
        "full-table-lock, non-concurrent-index, not-null-without-default, rename-column, rename-table, set-not-null, "
        "unique-constraint-under-lock, validate-in-same-transaction, volatile-default)"]


FIRST_0002 = Path(__file__).resolve().parent / "data" / "0002_deployment_duration_first_release.py.txt"


@pytest.mark.postgres
def test_the_shipped_migrations_lint_clean_and_0002s_first_release_is_flagged(pg: peewee.Database,
                                                                               postgres_url: str,
                                                                               tmp_path: Path) -> None:
    migrate_up(pg, target="0001")
    pg.execute_sql("INSERT INTO team (name, created_at) VALUES ('t', now())")
    # 0002 backfills after its commit, in batches; 0003's indexes are concurrent: nothing to flag.
    report = lint(pg, migrations_dir(), MODELS)
    assert report.ok and report.findings == [], report.findings
    # Its first release ran the backfill in the transaction its ADD COLUMN locked the table in.
    folder = tmp_path / "migrations"
    folder.mkdir()
    for f in migrations_dir().glob("000[13]_*.py"):
        (folder / f.name).write_text(f.read_text())
    (folder / "0002_deployment_duration.py").write_text(FIRST_0002.read_text())
    report = lint(pg, folder, MODELS)
    assert [(f.migration, f.rule, f.table) for f in report.findings] == [
        ("0002_deployment_duration", "backfill-in-transaction", "deployment")]
    result = CliRunner().invoke(main, ["--database", postgres_url, "migrate", "--migrations", str(folder), "lint"])
    assert result.exit_code == 1
    assert result.stdout.startswith("unsafe: 0002_deployment_duration: backfill-in-transaction on deployment (0 rows): "
                                    'UPDATE "deployment" SET "duration_seconds" = ')
    data = json.loads(CliRunner().invoke(main, ["--database", postgres_url, "migrate", "--migrations", str(folder),
                                                "lint", "--json"]).stdout)
    assert data["ok"] is False and data["findings"][0]["rule"] == "backfill-in-transaction"
    result = CliRunner().invoke(main, ["--database", postgres_url, "migrate", "--migrations", str(folder), "check"])
    assert result.exit_code == 1
    assert result.stdout.startswith("unsafe: 0002_deployment_duration: backfill-in-transaction on deployment")
    assert check(pg, MODELS, folder).lint[0].rule == "backfill-in-transaction"


def test_a_fresh_database_has_nothing_in_use_and_sqlite_says_it_is_not_judged(db: peewee.Database,
                                                                               db_url: str) -> None:
    report = lint(db, migrations_dir(), MODELS)
    assert report.ok and report.findings == [] and report.checked == [
        "0001_initial", "0002_deployment_duration", "0003_deployment_history_indexes"]
    result = CliRunner().invoke(main, ["--database", db_url, "migrate", "lint"])
    assert result.exit_code == 0
    if isinstance(db, peewee.PostgresqlDatabase):
        assert result.stdout == "lint: 3 pending migration(s), nothing unsafe\n"
    else:
        assert result.stdout.startswith("note: SQLite is the local database (one writer at a time, no lock queue per "
                                        "table): lint judges PostgreSQL migrations")
    migrate_up(db)
    assert CliRunner().invoke(main, ["--database", db_url, "migrate", "lint"]).stdout.endswith(
        "lint: nothing pending\n")
