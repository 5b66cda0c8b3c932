"""Write the SQL orm-kit runs on PostgreSQL into files for squawk (the PostgreSQL migration linter) to read.

    .venv/bin/python .ci/squawk_sql.py URL OUT_DIR

URL is a PostgreSQL database whose public schema this drops. It writes what `orm-kit migrate sql` prints:

* ``fresh.sql``:    the shipped migrations on an empty database (0001 creates the tables);
* ``in_use.sql``:   0002 and 0003 on a database where 0001's tables exist (the case that matters);
* ``make.sql``:     what `migrate make` writes for a NOT NULL column with a default and an index on deployment,
                    run on a database with the shipped migrations applied.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import peewee

from orm_kit.db import open_database
from orm_kit.migrate import MigrationSql, make_migration, preview_sql
from orm_kit.models import MODELS, Deployment
from orm_kit.platform import migrate_up, migrations_dir


def text(plans: list[MigrationSql]) -> str:
    lines = []
    for plan in plans:
        lines.append(f"-- {plan.name} ({plan.direction})")
        lines += [s.rstrip().rstrip(";") + ";" for s in [*plan.settings, *plan.statements, *plan.after_commit]]
    return "\n".join(lines) + "\n"


def main(url: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    db = open_database(url)
    db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
    db.execute_sql("CREATE SCHEMA public")
    (out / "fresh.sql").write_text(text(preview_sql(db, migrations_dir())))
    migrate_up(db, target="0001")
    (out / "in_use.sql").write_text(text(preview_sql(db, migrations_dir())))
    migrate_up(db)

    class RegionDeployment(Deployment):
        region = peewee.CharField(max_length=16, default="eu", index=True)

        class Meta:
            table_name = "deployment"

    folder = Path(tempfile.mkdtemp(prefix="orm-kit-squawk-"))
    try:
        for f in sorted(migrations_dir().glob("0*.py")):
            shutil.copy(f, folder / f.name)
        models = [RegionDeployment if m is Deployment else m for m in MODELS]
        assert make_migration(db, models, "deployment region", folder) is not None
        (out / "make.sql").write_text(text(preview_sql(db, folder)))
    finally:
        shutil.rmtree(folder)
        db.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
