"""Deployments remember how long they ran: ``duration_seconds``, backfilled, indexed per service.

Frozen history: this file declares what it needs inline and never imports today's models.
Runs (and reverts) the same on SQLite and PostgreSQL; only the backfill's date arithmetic differs.
On PostgreSQL the backfill runs after the ADD COLUMN's commit, in batches of 2,000 rows, each its own
transaction, and the index is built concurrently: no long lock on a deployment table in use.
"""

import peewee

INDEX = ("service_id", "duration_seconds")

#: The first release of this file ran the backfill as one UPDATE inside the ADD COLUMN's transaction, which
#: held deployment locked for as long as it took. The schema it leaves is the same.
supersedes = {
    "4dded8142db0f31cb5720baaffab18747ae8593c40c3fe8a95602d70aecd7f70":
        "backfill moved after the commit, in batches; the same schema",
}


def up(migrator, db):
    migrator.migrate(migrator.add_column("deployment", "duration_seconds", peewee.IntegerField(null=True)))
    if isinstance(db, peewee.PostgresqlDatabase):
        seconds = 'CAST(ROUND(EXTRACT(EPOCH FROM "finished_at" - "started_at")) AS INTEGER)'
    else:  # SQLite keeps UTC timestamps as ISO text, which julianday() reads
        seconds = 'CAST(ROUND((julianday("finished_at") - julianday("started_at")) * 86400) AS INTEGER)'
    migrator.migrate(migrator.backfill(
        "deployment", {"duration_seconds": peewee.SQL(seconds)},
        where='"started_at" IS NOT NULL AND "finished_at" IS NOT NULL', batch_size=2_000))
    migrator.migrate(migrator.add_index("deployment", INDEX, False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("deployment", "deployment_" + "_".join(INDEX)))
    migrator.migrate(migrator.drop_column("deployment", "duration_seconds"))
