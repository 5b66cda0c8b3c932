"""Test support for code built on orm-kit: test databases, query budgets and a throwaway PostgreSQL server.

    from orm_kit.testing import max_queries, no_n_plus_one, record_queries   # query budgets, N+1 detection
    from orm_kit.testing import SchemaSetup, SessionDatabases                # the session's databases
    from orm_kit.testing import pgserver                                     # a throwaway PostgreSQL server
    from orm_kit.testing.typecheck import type_problems                      # what mypy sees of your models

The pytest plugin (:mod:`orm_kit.testing.plugin`, installed with orm-kit) builds on these: its fixtures
``orm_kit_db``, ``max_queries``, ``no_n_plus_one``, ``record_queries`` and ``on_commit_hooks`` are what a
service's tests use. Importing this package does not import pytest.
"""

from __future__ import annotations

# pgserver is not imported here: `python -m orm_kit.testing.pgserver` would then find it loaded already.
from orm_kit.testing.databases import BACKENDS, SchemaSetup, SessionDatabases
from orm_kit.testing.queries import (
    DEFAULT_N_PLUS_ONE_THRESHOLD,
    QueryLog,
    Repeat,
    Statement,
    max_queries,
    no_n_plus_one,
    record_queries,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_N_PLUS_ONE_THRESHOLD",
    "QueryLog",
    "Repeat",
    "SchemaSetup",
    "SessionDatabases",
    "Statement",
    "max_queries",
    "no_n_plus_one",
    "record_queries",
]
