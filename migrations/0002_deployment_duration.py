"""Deployments remember how long they ran: ``duration_seconds``, backfilled, indexed per service.

Frozen history: this file declares what it needs inline and never imports today's models.
Runs (and reverts) the same on SQLite and PostgreSQL; only the backfill's date arithmetic differs.
"""

import peewee

INDEX = ("service_id", "duration_seconds")


def up(migrator, db):
    migrator.migrate(migrator.add_column("deployment", "duration_seconds", peewee.IntegerField(null=True)))
    if isinstance(db, peewee.PostgresqlDatabase):
        seconds = 'CAST(ROUND(EXTRACT(EPOCH FROM "finished_at" - "started_at")) AS INTEGER)'
    else:  # SQLite keeps UTC timestamps as ISO text, which julianday() reads
        seconds = 'CAST(ROUND((julianday("finished_at") - julianday("started_at")) * 86400) AS INTEGER)'
    db.execute_sql(
        f'UPDATE "deployment" SET "duration_seconds" = {seconds} '
        'WHERE "started_at" IS NOT NULL AND "finished_at" IS NOT NULL'
    )
    migrator.migrate(migrator.add_index("deployment", INDEX, False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("deployment", "deployment_" + "_".join(INDEX)))
    migrator.migrate(migrator.drop_column("deployment", "duration_seconds"))
