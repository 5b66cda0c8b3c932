"""The hook the pytest plugin asks for the test database's schema (implement it in a conftest.py or plugin).

    # conftest.py
    from orm_kit.testing import SchemaSetup

    def pytest_orm_kit_schema(config):
        return SchemaSetup(models=MODELS, migrations=Path(__file__).parent.parent / "migrations")

The first implementation that returns a schema wins; a conftest.py's comes before an installed plugin's.
orm-kit's own platform answers last (``orm_kit.platform_testing``), so a service built on the platform's
tables needs no configuration at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from orm_kit.testing.databases import SchemaSetup


@pytest.hookspec(firstresult=True)
def pytest_orm_kit_schema(config: pytest.Config) -> SchemaSetup | None:
    """The models and migrations of the session's test databases (None: ask the next implementation)."""
