"""Test support for code built on orm-kit: a throwaway PostgreSQL server (:mod:`orm_kit.testing.pgserver`)."""
