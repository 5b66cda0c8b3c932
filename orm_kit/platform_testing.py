"""The platform's answer to orm-kit's pytest plugin: test databases hold its ten tables, built by its migrations.

Installed as the ``orm_kit_platform`` pytest plugin (a ``pytest11`` entry point), so a service built on
the platform's tables gets a migrated, rolled-back ``orm_kit_db`` with no configuration::

    def test_find_by_name(orm_kit_db):
        ServiceRepository(orm_kit_db).find_by_name("checkout-api")

A service with tables of its own (``[tool.orm-kit]`` in its ``pyproject.toml``, see :mod:`orm_kit.config`)
gets them too: the test databases hold every app's tables, built by every app's migrations in the order
``orm-kit migrate`` applies them.

It answers last: a conftest.py's ``pytest_orm_kit_schema``, the ``orm_kit_models`` ini option or an
overridden ``orm_kit_schema`` fixture comes first. ``-p no:orm_kit_platform`` turns it off. The toolkit's
plugin (``orm_kit.testing.plugin``) never imports the platform: this module hands it the platform's parts.
"""

from __future__ import annotations

import pytest

from orm_kit import platform
from orm_kit.config import load_project
from orm_kit.errors import ConfigurationError
from orm_kit.testing import SchemaSetup

__all__ = ["pytest_orm_kit_schema"]


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_orm_kit_schema(config: pytest.Config) -> SchemaSetup:
    """The platform's models and shipped migrations, and those of the project's own apps (pyproject.toml)."""
    try:
        project = load_project(platform.APP, start=config.rootpath)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if len(project.apps) == 1 and project.apps[0] is platform.APP:
        return SchemaSetup(models=platform.MODELS, migrations=platform.migrations_dir())
    return SchemaSetup(models=[model for app in project.apps for model in app.models],
                       migrations=project.migration_sources())
