"""The migration engine: numbered files applied in order under a lock, checksummed, recorded, reversible.

    from orm_kit.migrate import Runner, check
    runner = Runner(db, Path("migrations"), lock_timeout=30)
    runner.up()                                   # ['0001_initial', ...]: the names applied
    check(db, MODELS, Path("migrations")).ok      # models, migrations and the live database agree

It knows nothing of any application: the caller names the folder of migrations and, where models
matter, the models (the platform's live in :mod:`orm_kit.platform`). One role per module, after
Django's ``db/migrations``:

==============  ==========================================================================================
module          role
==============  ==========================================================================================
``files``       the ``NNNN_slug.py`` files on disk: discovery, order, checksums, loading one
``history``     the history table (peewee's ``schema_migration``, extended), written through a model
``plan``        files and history merged: each migration's state, the problems that stop a run, what to run
``apps``        several apps' folders in one database: ``depends_on``, the order across apps
``lock``        one runner at a time (PostgreSQL advisory lock, SQLite write lock), run claims
``lockwait``    short lock waits for migration statements: lock_timeout, retries, who blocked (PostgreSQL)
``migrator``    playhouse.migrate's migrator handed to ``up(migrator, db)``; checked SQLite rebuilds
``safe``        the PostgreSQL migrator's safe forms for tables in use; drops that never cascade
``steps``       what a migration defers until after its commit: concurrent indexes, validation, backfills
``runner``      the executor: up, down, baseline, repair under the lock, a transaction per migration
``losses``      what a ``down`` would drop that holds rows, counted before it runs
``snapshot``    a schema as comparable facts
``scratch``     throwaway databases; replaying migrations and realizing models there
``drift``       three-way drift (models, migrations, live) and checked adoption (``baseline``)
``verify``      every migration's round trip on a scratch database
``codegen``     ``create`` and ``make``: writing the next migration file
``preview``     ``sql``: the statements a run would execute, captured on a scratch database
``lint``        ``lint``: the pending migrations' statements that would lock a table in use, and the fix
==============  ==========================================================================================
"""

from __future__ import annotations

from orm_kit.migrate.apps import DEFAULT_APP, AppMigrations
from orm_kit.migrate.codegen import create_migration, make_migration
from orm_kit.migrate.drift import DriftReport, Finding, baseline, check
from orm_kit.migrate.files import MigrationFile, discover
from orm_kit.migrate.history import HISTORY_TABLE, HistoryRow
from orm_kit.migrate.lint import LintFinding, LintReport, lint
from orm_kit.migrate.lock import DEFAULT_LOCK_TIMEOUT
from orm_kit.migrate.lockwait import LockPolicy
from orm_kit.migrate.plan import MigrationState, Plan, RepairReport, Status
from orm_kit.migrate.preview import MigrationSql, preview_new_sql, preview_sql
from orm_kit.migrate.runner import Runner
from orm_kit.migrate.verify import VerifyReport, VerifyStep, verify

__all__ = [
    "DEFAULT_APP",
    "DEFAULT_LOCK_TIMEOUT",
    "HISTORY_TABLE",
    "AppMigrations",
    "DriftReport",
    "Finding",
    "HistoryRow",
    "LintFinding",
    "LintReport",
    "LockPolicy",
    "MigrationFile",
    "MigrationSql",
    "MigrationState",
    "Plan",
    "RepairReport",
    "Runner",
    "Status",
    "VerifyReport",
    "VerifyStep",
    "baseline",
    "check",
    "create_migration",
    "discover",
    "lint",
    "make_migration",
    "preview_new_sql",
    "preview_sql",
    "verify",
]
