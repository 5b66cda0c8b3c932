"""Hostile arguments to the toolkit's functions: a typed OrmKitError, never a TypeError, OSError or AttributeError."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import peewee
import pytest

import orm_kit
from orm_kit.bulk import BulkWriter
from orm_kit.echo import echo
from orm_kit.errors import OrmKitError
from orm_kit.migrate import Runner, create_migration, preview_sql
from orm_kit.platform import SEED_REGISTRY, migrations_dir, seed_dir
from orm_kit.seeding import SeedRegistry, SeedTable, load, remove, status
from orm_kit.seeding.files import read_rows
from orm_kit.synthetic import generate
from orm_kit.testing import max_queries, no_n_plus_one
from orm_kit.transactions import transaction

CASES: dict[str, Callable[[peewee.Database, Path], object]] = {
    "echo to something without write()": lambda db, _: echo(db, stream=5),  # type: ignore[arg-type]
    "echo to a logger that is text": lambda db, _: echo(db, logger="app.sql"),  # type: ignore[arg-type]
    "max_queries(NaN)": lambda db, _: max_queries(math.nan, db=db).__enter__(),  # type: ignore[arg-type]
    "no_n_plus_one(threshold=-1)": lambda db, _: no_n_plus_one(db, threshold=-1).__enter__(),
    "a migrations folder that is a file": lambda db, tmp: Runner(db, tmp / "file").up(),
    "a migration name of 5,000 letters": lambda db, tmp: create_migration(tmp / "m", "a" * 5000),
    "a migration name that is not text": lambda db, tmp: create_migration(tmp / "m", 7),  # type: ignore[arg-type]
    "down(steps=NaN)": lambda db, _: Runner(db, migrations_dir()).down(steps=math.nan),  # type: ignore[arg-type]
    "down(steps=True)": lambda db, _: Runner(db, migrations_dir()).down(steps=True),
    "up(target=5)": lambda db, _: Runner(db, migrations_dir()).up(5),  # type: ignore[arg-type]
    "a preview target of 5,000 digits": lambda db, _: preview_sql(db, migrations_dir(), "9" * 5000),
    "a seed key that is not a tuple": lambda db, _: SeedRegistry([SeedTable(orm_kit.Team, key=5)]),  # type: ignore[arg-type]
    "a seed registry of models": lambda db, _: SeedRegistry([orm_kit.Team]),  # type: ignore[list-item]
    "a seed folder with a NUL": lambda db, tmp: load(db, SEED_REGISTRY, tmp / "\x00"),
    "a seed set name that is a number": lambda db, _: load(db, SEED_REGISTRY, seed_dir(), sets=[5]),  # type: ignore[list-item]
    "remove(5)": lambda db, _: remove(db, SEED_REGISTRY, 5),  # type: ignore[arg-type]
    "status(sets=5)": lambda db, _: status(db, SEED_REGISTRY, seed_dir(), sets=[5]),  # type: ignore[list-item]
    "isolation=5": lambda db, _: transaction(db, isolation=5).__enter__(),  # type: ignore[arg-type]
    "seed sets that are a number": lambda db, _: load(db, SEED_REGISTRY, seed_dir(), sets=5),  # type: ignore[arg-type]
    "status(sets=5.5)": lambda db, _: status(db, SEED_REGISTRY, seed_dir(), sets=5.5),  # type: ignore[arg-type]
    "load(max_problems='all')": lambda db, _: load(db, SEED_REGISTRY, seed_dir(),
                                                   max_problems="all"),  # type: ignore[arg-type]
    "BulkWriter(max_rows=None)": lambda db, _: BulkWriter(db, max_rows=None),  # type: ignore[arg-type]
    "generate(max_rows='x')": lambda db, _: generate(db, deployments=1, max_rows="x"),  # type: ignore[arg-type]
    "read_rows(max_bytes=2**63)": lambda db, _: read_rows(seed_dir() / "reference" / "teams.yaml", max_bytes=2**63),
    "down(steps=10**5000)": lambda db, _: Runner(db, migrations_dir()).down(steps=10**5000),
    "a repository given the database first": lambda db, _: orm_kit.Repository(db, orm_kit.Team),  # type: ignore[call-overload]
    "a repository given three arguments": lambda db, _: orm_kit.Repository(orm_kit.Team, db, db),  # type: ignore[call-overload]
    "@validate naming no field": lambda db, _: orm_kit.validate(nmae=[])(orm_kit.Team),
    "a backref given another model's row": lambda db, _: orm_kit.backref(orm_kit.Service, orm_kit.Service.owner)(
        orm_kit.Release()),  # type: ignore[arg-type]
}



@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_argument_is_a_typed_error(migrated: peewee.Database, tmp_path: Path, case: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    out = io.StringIO()
    with echo(migrated, stream=out):  # the database keeps working after the refusal
        with pytest.raises(OrmKitError) as caught:
            CASES[case](migrated, tmp_path)
        assert len(str(caught.value)) < 1000
        assert orm_kit.Team.select().count() == 0
    assert "SELECT COUNT" in out.getvalue()


def test_echo_refuses_before_a_single_statement_fails(migrated: peewee.Database) -> None:
    with pytest.raises(OrmKitError, match="has no write"):
        echo(migrated, stream=object())  # type: ignore[arg-type]
    assert orm_kit.Team.select().count() == 0  # no hook was left behind to fail every statement

