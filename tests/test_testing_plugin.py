"""The pytest plugin, as a service's test suite meets it: pytest run inside pytest (pytester), outside this conftest.

Each inner run gets the outer session's PostgreSQL server through --orm-kit-postgres-url (except the one that
checks the plugin starts a server of its own), and creates and drops its own database there.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from orm_kit.db import open_database

README = Path(__file__).resolve().parent.parent / "README.md"

MODELS = '''
import peewee

class Note(peewee.Model):
    title = peewee.CharField(max_length=40, unique=True)

class Tag(peewee.Model):
    note = peewee.ForeignKeyField(Note, backref="tags", on_delete="CASCADE")
    label = peewee.CharField(max_length=20)

MODELS = [Note, Tag]
'''

MIGRATION = '''
import peewee

def up(migrator, db):
    class Note(peewee.Model):
        title = peewee.CharField(max_length=40, unique=True)

    class Tag(peewee.Model):
        note = peewee.ForeignKeyField(Note, on_delete="CASCADE")
        label = peewee.CharField(max_length=20)

    db.bind([Note, Tag])
    db.create_tables([Note, Tag])

def down(migrator, db):
    db.execute_sql('DROP TABLE "tag"')
    db.execute_sql('DROP TABLE "note"')
'''

SERVICE_TESTS = '''
import pytest
from orm_kit.transactions import on_commit, transaction
from myservice.models import Note, Tag

def test_writes_and_commits(orm_kit_db, orm_kit_backend, on_commit_hooks):
    ran = []
    with transaction(orm_kit_db):
        note = Note.create(title="first")
        on_commit(orm_kit_db, lambda: ran.append("sent"))
        assert ran == []
    assert ran == ["sent"] and len(on_commit_hooks) == 1
    Tag.create(note=note, label="x")
    assert type(orm_kit_db).__name__ == {"sqlite": "SqliteDatabase", "postgres": "PostgresDatabase"}[orm_kit_backend]

def test_sees_nothing_the_other_test_wrote(orm_kit_db):
    assert Note.select().count() == 0 and Tag.select().count() == 0

def test_over_budget(orm_kit_db, max_queries):
    with max_queries(1):
        Note.select().count()
        Tag.select().count()

def test_n_plus_one(orm_kit_db, no_n_plus_one):
    note = Note.create(title="n")
    for n in range(3):
        Tag.create(note=note, label=str(n))
    tags = list(Tag.select())
    with no_n_plus_one():
        [t.note.title for t in tags]

@pytest.mark.orm_kit_backends("postgres")
def test_only_on_postgres(orm_kit_backend):
    assert orm_kit_backend == "postgres"
'''


@pytest.fixture
def service(pytester: pytest.Pytester) -> pytest.Pytester:
    """A service's repository: its own models and migrations, named in its pytest ini."""
    pytester.makeini("[pytest]\norm_kit_models = myservice.models:MODELS\norm_kit_migrations = migrations\n")
    package = pytester.mkpydir("myservice")
    (package / "models.py").write_text(MODELS)
    migrations = pytester.mkdir("migrations")
    (migrations / "0001_initial.py").write_text(MIGRATION)
    pytester.makepyfile(test_service=SERVICE_TESTS)
    pytester.syspathinsert()
    return pytester


def databases(url: str) -> set[str]:
    db = open_database(url)
    try:
        return {row[0] for row in db.execute_sql("SELECT datname FROM pg_database").fetchall()}
    finally:
        db.close()


def test_a_services_suite_runs_on_both_backends_each_test_rolled_back(service: pytest.Pytester,
                                                                      orm_kit_postgres_url: str) -> None:
    before = databases(orm_kit_postgres_url)
    result = service.runpytest("--orm-kit-postgres-url", orm_kit_postgres_url, "-v")
    result.assert_outcomes(passed=5, failed=4)
    result.stdout.fnmatch_lines([
        "orm-kit: database tests on sqlite, postgres; PostgreSQL: postgresql://orm_kit:***@*",
        "*test_writes_and_commits?sqlite? PASSED*",
        "*test_writes_and_commits?postgres? PASSED*",
        "*test_sees_nothing_the_other_test_wrote?postgres? PASSED*",
        "*test_only_on_postgres?postgres? PASSED*",
    ])
    output = result.stdout.str()
    assert "test_only_on_postgres[sqlite]" not in output
    assert "QueryBudgetError: 2 queries ran where the budget is 1:" in output
    assert "N+1 queries: one SELECT ran 3 times in this block, each time with the same parameters" in output
    assert "orm-kit-test-secret" not in output  # the server's password never shows
    assert databases(orm_kit_postgres_url) == before  # the session's own database was dropped


def test_backends_can_be_narrowed_and_a_typo_is_refused(service: pytest.Pytester) -> None:
    result = service.runpytest("--orm-kit-backends", "sqlite", "-k", "writes or nothing")
    result.assert_outcomes(passed=2)
    result = service.runpytest("--orm-kit-backends", "sqlite,postgress")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*orm-kit backends sqlite, postgress: expected one or more of sqlite, postgres*"])


def test_with_no_configuration_the_platforms_tables_are_used(pytester: pytest.Pytester,
                                                            orm_kit_postgres_url: str) -> None:
    pytester.makepyfile(test_platform='''
        from orm_kit import ServiceRepository, Team

        def test_platform_tables(orm_kit_db, max_queries):
            team = Team.create(name="payments")
            services = ServiceRepository(orm_kit_db)
            svc = services.create(name="checkout-api", tier="critical", owner=team)
            with max_queries(2):
                assert services.find_with_deployments(svc.id).deployments == ()
    ''')
    result = pytester.runpytest("--orm-kit-postgres-url", orm_kit_postgres_url)
    result.assert_outcomes(passed=2)


def test_a_conftest_hook_chooses_the_schema(pytester: pytest.Pytester, orm_kit_postgres_url: str) -> None:
    package = pytester.mkpydir("myservice")
    (package / "models.py").write_text(MODELS)
    pytester.syspathinsert()
    pytester.makeconftest('''
        from orm_kit.testing import SchemaSetup
        from myservice.models import MODELS, Note

        def pytest_orm_kit_schema(config):
            # no migrations: the tables are created from the models; `after` loads committed reference rows
            return SchemaSetup(models=MODELS, after=lambda db: Note.create(title="reference"))
    ''')
    pytester.makepyfile(test_hook='''
        from myservice.models import Note

        def test_tables(orm_kit_db):
            assert "note" in orm_kit_db.get_tables() and "team" not in orm_kit_db.get_tables()
            assert [n.title for n in Note.select()] == ["reference"]
            Note.create(title="mine")

        def test_reference_rows_stay(orm_kit_db):
            assert [n.title for n in Note.select()] == ["reference"]
    ''')
    result = pytester.runpytest("--orm-kit-postgres-url", orm_kit_postgres_url)
    result.assert_outcomes(passed=4)


def test_without_models_the_error_says_how_to_name_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(orm_kit_db):\n    pass\n")
    result = pytester.runpytest("-p", "no:orm_kit_platform", "--orm-kit-backends", "sqlite")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*orm-kit does not know your models: set orm_kit_models = module:MODELS*"])


def test_without_a_url_the_plugin_starts_a_throwaway_server(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORM_KIT_TEST_POSTGRES_URL", raising=False)
    pytester.makepyfile(test_server='''
        def test_on_postgres(orm_kit_db, orm_kit_postgres_url):
            assert orm_kit_db.execute_sql("SHOW server_version").fetchone()[0].split(".")[0].isdigit()
            assert "@127.0.0.1:" in orm_kit_postgres_url
    ''')
    result = pytester.runpytest("--orm-kit-backends", "postgres")
    result.stdout.fnmatch_lines(["orm-kit: *PostgreSQL: a throwaway server, started when a test needs it"])
    result.assert_outcomes(passed=1)


def readme_plugin_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    examples = [b for b in blocks if "def test_" in b and "orm_kit_db" in b]
    assert len(examples) == 1, "README.md should show one example test file for the plugin"
    return examples[0]


def test_the_readmes_example_test_file_passes(pytester: pytest.Pytester, orm_kit_postgres_url: str) -> None:
    pytester.makepyfile(test_readme_example=textwrap.dedent(readme_plugin_example()))
    result = pytester.runpytest("--orm-kit-postgres-url", orm_kit_postgres_url, "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and set(outcomes) == {"passed"}, result.stdout.str()
