"""Every PostgreSQL session orm-kit opens runs in UTC, whatever the server's or the role's ``TimeZone``.

    from orm_kit.pgsession import PostgresDatabase, UTCSessions
    db = PostgresDatabase("platform", host="db", user="app")      # peewee's class, its sessions in UTC
    class MyPooled(PooledDatabase, UTCSessions, peewee.PostgresqlDatabase): ...   # under a pool: new ones

``timestamptz`` is stored as an instant but read back in the session's time zone, and psycopg builds a
Python ``datetime`` from that local reading. In a session at UTC+14 the instant 9999-12-31 20:00Z reads
as the year 10000, which Python cannot represent: every query over the table fails ("timestamp too
large"), although the value was valid when written. In UTC a value orm-kit let through (validation
refuses instants outside years 1-9999 once in UTC) always reads back. So each new connection runs ``SET
TIME ZONE 'UTC'`` once (one round trip, on the connection's first use only: a pool's reused connections
do not pay it), and a pool's reset puts it back after its ``RESET ALL`` (:mod:`orm_kit.pool`). A ``SET``,
not the ``options=-c TimeZone=UTC`` startup parameter: PgBouncer refuses unknown startup parameters, and
tracks ``TimeZone`` per client, so the setting follows the client across server connections there.
"""

from __future__ import annotations

from typing import Any

import peewee

__all__ = ["SESSION_SQL", "PostgresDatabase", "UTCSessions"]

SESSION_SQL = "SET TIME ZONE 'UTC'"


class UTCSessions(peewee.PostgresqlDatabase):
    """Mixed in under any PostgreSQL-protocol database class: each new connection is set to UTC."""

    def _connect(self) -> Any:
        conn = super()._connect()  # type: ignore[misc]  # _connect is peewee internals, missing from the stubs
        try:
            with conn.cursor() as cursor:  # autocommit (peewee's): nothing is left open
                cursor.execute(SESSION_SQL)
        except Exception:
            conn.close()
            raise
        return conn


class PostgresDatabase(UTCSessions, peewee.PostgresqlDatabase):
    """peewee's PostgreSQL database with its sessions in UTC (what ``postgresql://`` URLs open)."""
