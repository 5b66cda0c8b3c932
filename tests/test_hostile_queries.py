"""Hostile values in queries: a NUL in a text match, a page past what a database can skip, a forged cursor.

Each is an InvalidQueryError raised before any SQL is sent, on both databases: never a wrong answer (SQLite
ended a LIKE pattern at a NUL, so ``search("\\x00")`` matched every row), never ``OverflowError`` or a
driver's error that aborts the caller's PostgreSQL transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import peewee
import pytest

from orm_kit.errors import InvalidQueryError
from orm_kit.models import Team
from orm_kit.repositories import ServiceRepository, TeamRepository
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
