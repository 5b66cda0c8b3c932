"""Hostile values in queries: a NUL in a text match, a page past what a database can skip, a forged cursor.

Each is an InvalidQueryError raised before any SQL is sent, on both databases: never a wrong answer (SQLite
ended a LIKE pattern at a NUL, so ``search("\\x00")`` matched every row), never ``OverflowError`` or a
driver's error that aborts the caller's PostgreSQL transaction.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import peewee
import pytest

from orm_kit.errors import ConfigurationError, InvalidQueryError, NotFoundError
from orm_kit.models import Deployment, Team
from orm_kit.repositories import DeploymentRepository, ServiceRepository, TeamRepository
from orm_kit.repository import MAX_OFFSET

import factories


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _refused_and_still_usable(db: peewee.Database, call: Callable[[], object]) -> InvalidQueryError:
    """``call()`` raises InvalidQueryError inside a transaction that then goes on working (nothing reached SQL)."""
    with db.atomic():
        with pytest.raises(InvalidQueryError) as caught:
            call()
        assert Team.select().count() >= 0  # PostgreSQL: the transaction was not aborted
    assert len(str(caught.value)) < 500
    return caught.value


@pytest.mark.parametrize("text", ["\x00", "ab\x00zzz", "\ud800"], ids=["nul", "nul-inside", "lone-surrogate"])
def test_a_nul_or_lone_surrogate_in_a_text_match_is_refused_not_matched_wrongly(migrated: peewee.Database,
                                                                                 text: str) -> None:
    owner = factories.team(name="owners")
    factories.service(name="ab", owner=owner)
    factories.service(name="xy", owner=owner)
    services = ServiceRepository(migrated)
    for call in (lambda: services.search(text), lambda: services.find(name__contains=text),
                 lambda: services.find(name__startswith=text), lambda: services.count(description__contains=text)):
        error = _refused_and_still_usable(migrated, call)
        assert "NUL" in str(error) or "surrogate" in str(error)
    assert [s.name for s in services.search("b")] == ["ab"]  # the same repository still matches


@pytest.mark.parametrize(("call", "expected"), [
    (lambda r: r.page(2**62, size=10), "page number must be a whole number of at least 1 and at most"),
    (lambda r: r.page(10**5000), "got <an integer of"),
    (lambda r: r.find(offset=MAX_OFFSET + 1), "offset must be a whole number from 0 to"),
    (lambda r: r.find(offset=-1), "offset must be a whole number"),
    (lambda r: r.find(limit=10**30), "limit must be a whole number of at least 1 and at most 10,000"),
    (lambda r: r.paginate(r.select(), 2**62, 10), "page number"),
], ids=["page-past-offset", "page-of-5000-digits", "offset-past-bigint", "negative-offset", "huge-limit",
        "paginate"])
def test_pages_and_offsets_past_what_a_database_can_skip_are_refused(migrated: peewee.Database,
                                                                     call: Callable[[TeamRepository], Any],
                                                                     expected: str) -> None:
    teams = TeamRepository(migrated)
    assert expected in str(_refused_and_still_usable(migrated, lambda: call(teams)))


def test_the_last_page_a_database_can_reach_is_an_empty_page(migrated: peewee.Database) -> None:
    factories.team(name="only")
    teams = TeamRepository(migrated)
    last = MAX_OFFSET // 10 + 1
    page = teams.page(last, size=10)
    assert page.items == () and page.total == 1 and page.number == last
    assert teams.find(offset=MAX_OFFSET) == []


@pytest.mark.parametrize("cursor", [
    5, b"bytes", "x" * 100_000, _cursor({"o": ["name", "id"], "v": [[[[[]]]] * 2]}),
    "W" * 2000 + "=", _cursor({"o": ["id"], "v": [1e400]}), _cursor({"o": ["id"], "v": [10**40]}),
    base64.urlsafe_b64encode(b'{"o":["id"],"v":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}").decode(),
], ids=["int", "bytes", "huge", "nested-values", "garbage", "infinite-id", "id-past-bigint", "json-past-recursion"])
def test_a_forged_cursor_is_an_invalid_query_error(migrated: peewee.Database, cursor: object) -> None:
    factories.team(name="a")
    factories.team(name="b")
    teams = TeamRepository(migrated)
    assert teams.cursor_page(size=1, order_by=["id"]).next_cursor is not None
    error = _refused_and_still_usable(migrated, lambda: teams.cursor_page(size=1, order_by=["id"], after=cursor))
    assert "cursor" in str(error)


HUGE = 10**5000  # past the 4,300 digits str() and int() take


@pytest.mark.parametrize(("call", "error", "expected"), [
    (lambda db: TeamRepository(db).find(order_by=5), InvalidQueryError, "order_by is a field name or a list"),
    (lambda db: TeamRepository(db).get(HUGE), NotFoundError, "Team <an integer of 16610 bits> does not exist"),
    (lambda db: TeamRepository(db).get("x" * 100_000), NotFoundError, "does not exist"),
    (lambda db: DeploymentRepository(db).environments_reached(HUGE), InvalidQueryError, "is not a full commit SHA"),
    (lambda db: DeploymentRepository(db).history(status=Team(name="t")), InvalidQueryError, "a status or a list"),
    (lambda db: TeamRepository(db).subteams(uuid.UUID(int=1)), InvalidQueryError, "Team.id must be an integer"),
    (lambda db: ServiceRepository(db).owned_by_team([]), InvalidQueryError, "Team.id must be an integer"),
    (lambda db: ServiceRepository(db).find_with_deployments(Deployment(id=uuid.UUID(int=2))), NotFoundError,
     "Service <Deployment: 00000000-0000-0000-0000-000000000002> does not exist"),
    (lambda db: ServiceRepository(db).get(12345678901234567890123456789012), NotFoundError, "must be a UUID"),
], ids=["order-by-a-number", "key-of-5000-digits", "key-of-100k-letters", "commit-of-5000-digits",
        "status-that-is-a-row", "team-that-is-a-uuid", "team-that-is-a-list", "key-that-is-another-tables-row",
        "uuid-key-that-is-a-32-digit-integer"])
def test_values_the_property_pass_found_are_typed_errors(migrated: peewee.Database, call: Callable[[Any], object],
                                                         error: type[Exception], expected: str) -> None:
    """Each was TypeError, ValueError, OverflowError or a driver's error before (found by test_hostile_properties)."""
    with migrated.atomic():
        with pytest.raises(error) as caught:
            call(migrated)
        assert expected in str(caught.value) and len(str(caught.value)) < 500
        assert Team.select().count() == 0


def test_a_repository_finds_a_row_given_the_row_itself(migrated: peewee.Database) -> None:
    team = factories.team(name="owners")
    assert TeamRepository(migrated).get(team).name == "owners"


def test_a_duration_of_5000_digits_is_refused() -> None:
    from orm_kit.bounds import check_seconds

    with pytest.raises(ConfigurationError, match="expected a number of seconds"):
        check_seconds(HUGE, "lock_timeout")


MODEL_READS: dict[str, Callable[[], object]] = {
    "get_by_id(2**70)": lambda: Team.get_by_id(2**70),
    "get(Team.id == 2**70)": lambda: Team.get(Team.id == 2**70),
    "delete_by_id(2**70)": lambda: Team.delete_by_id(2**70),
    "select().limit(2**70)": lambda: list(Team.select().limit(2**70)),
    "get(name=lone surrogate)": lambda: Team.get(name="\udc80"),
    "where(name == lone surrogate)": lambda: Team.select().where(Team.name == "a\udc80").count(),
}


@pytest.mark.parametrize("case", list(MODEL_READS))
def test_the_model_api_given_a_value_no_driver_can_send_is_a_typed_error(migrated: peewee.Database,
                                                                        case: str) -> None:
    # The repositories refuse these values by field; peewee's own query API reaches the driver with them.
    sent = False
    with migrated.atomic() as txn:
        Team.create(name="payments")
        try:
            MODEL_READS[case]()
        except Team.DoesNotExist:
            pass  # PostgreSQL compares a big integer as numeric: nothing matches, which is right
        except InvalidQueryError as error:
            sent = "out of range for PostgreSQL" in str(error)  # refused by the server, once sent
            assert sent or "cannot be sent to the database" in str(error), error
        if sent:  # as after any error PostgreSQL raises, the transaction can only be rolled back
            assert isinstance(migrated, peewee.PostgresqlDatabase) and case == "select().limit(2**70)"
            txn.rollback()
        else:  # refused before sending: the transaction is still usable, the row still there
            assert Team.select().count() == 1
