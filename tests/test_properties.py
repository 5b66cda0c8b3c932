"""Property tests: whatever a caller writes, SQLite and PostgreSQL keep exactly the same thing.

Every value either fails validation (nothing sent to the database) or is stored and read back unchanged,
on both backends. No value reaches the database only to be refused there.
"""

from __future__ import annotations

from typing import Any

import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orm_kit.errors import ValidationError
from orm_kit.models import Service

import factories as f

pytestmark = pytest.mark.usefixtures("migrated")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _round_trip(migrated: peewee.Database, field: str, value: Any) -> None:
    owner = f.team()
    try:
        with migrated.atomic() as txn:
            data: dict[str, Any] = {"name": "svc", "tier": "low", "owner": owner, field: value}
            svc = Service.create(**data)
            assert getattr(Service.get_by_id(svc.id), field) == value
            txn.rollback()
    except ValidationError as error:
        assert field in error.errors
    finally:
        owner.delete_instance()


@SETTINGS
@given(value=st.text(st.characters(codec=None, exclude_categories=()), max_size=300))
def test_any_text_is_stored_exactly_or_refused(migrated: peewee.Database, value: str) -> None:
    _round_trip(migrated, "description", value)


@SETTINGS
@given(value=st.integers(min_value=-(2**70), max_value=2**70))
def test_any_integer_is_stored_exactly_or_refused(migrated: peewee.Database, value: int) -> None:
    _round_trip(migrated, "lock_version", value)


@SETTINGS
@given(value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ A", min_size=0, max_size=70))
def test_any_name_is_stored_exactly_or_refused(migrated: peewee.Database, value: str) -> None:
    _round_trip(migrated, "name", value)
