"""Deployment history reads newest first: index (created_at, id) and (environment_id, created_at, id).

Without them, a history page that does not filter by service sorts the whole deployment table (SQLite
plans USE TEMP B-TREE FOR ORDER BY; 200,000 rows took ~300 ms a page). With them the keyset cursor
(created_at, id) walks an index. Frozen history: declares what it needs inline.
"""

INDEXES = (("created_at", "id"), ("environment_id", "created_at", "id"))


def up(migrator, db):
    for columns in INDEXES:
        migrator.migrate(migrator.add_index("deployment", columns, False))


def down(migrator, db):
    for columns in reversed(INDEXES):
        migrator.migrate(migrator.drop_index("deployment", "deployment_" + "_".join(columns)))
