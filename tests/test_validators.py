"""Each built-in validator's accepted and rejected values (pure: no database)."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import Any

import peewee
import pytest

from orm_kit.validation import (
    Validator,
    commit_sha,
    email,
    field_type_error,
    length,
    matches,
    not_blank,
    number_range,
    one_of,
    required,
    semver,
    slug,
    url,
)

SHA = "0123456789abcdef0123456789abcdef01234567"

CASES: list[tuple[Validator, list[Any], list[tuple[Any, str]]]] = [
    (required(), ["", "x", 0, False], [(None, "can't be blank")]),
    (not_blank(), ["x", " x "], [(None, "can't be blank"), ("", "can't be blank"), ("  \t", "can't be blank")]),
    (not_blank(allow_none=True), ["x", None], [("", "can't be blank"), (" ", "can't be blank")]),
    (length(max=3), ["", "abc", None], [("abcd", "is too long (maximum is 3 characters, got 4)")]),
    (length(min=2), ["ab", "abc"], [("a", "is too short (minimum is 2 characters, got 1)")]),
    (matches(r"[a-z]+", "lowercase letters"), ["abc"], [("ABC", "must be lowercase letters (got 'ABC')"),
                                                        ("abc1", "must be lowercase letters")]),
    (one_of("a", "b"), ["a", "b"], [("c", "must be one of a, b (got 'c')"), ([], "must be one of a, b")]),
    (email(), ["team@example.com", "a.b+c@sub.example.org"],
     [("team", "is not a valid email address"), ("a@b", "is not a valid email address"),
      ("a b@example.com", "is not a valid email address"), ("@example.com", "is not a valid email address")]),
    (url(), ["https://example.com", "http://localhost:8080/x?y=1"],
     [("example.com", "is not a valid URL"), ("ftp://example.com", "is not a valid URL"),
      ("https://", "is not a valid URL"), ("https://exa mple.com", "is not a valid URL")]),
    (url(), ["http://[::1]:8080/", "https://h:65535"],  # an unclosed IPv6 host raised UnboundLocalError
     [("http://[::1", "is not a valid URL"), ("http://[zz]/", "is not a valid URL"),
      ("http://h:99999", "is not a valid URL"), ("http://h:port", "is not a valid URL")]),
    (url(schemes=("ssh",)), ["ssh://git@example.com/repo.git"], [("https://example.com", "expected ssh://")]),
    (number_range(min=0, max=10), [0, 10, 5.5, decimal.Decimal("3")],
     [(-1, "must be at least 0 (got -1)"), (11, "must be at most 10 (got 11)"),
      (math.nan, "must be a finite number"), (decimal.Decimal("NaN"), "must be a finite number"),
      (decimal.Decimal("sNaN"), "must be a finite number"), (10**5000, "must be at most 10 (got <an integer of")]),
    (semver(), ["1.0.0", "0.9.12", "2.0.0-rc.1", "1.0.0+build.5", "1.0.0-alpha.1+sha.abc"],
     [("1.0", "must be a semantic version"),
      ("v1.0.0", "must be a semantic version"), ("01.0.0", "must be a semantic version"),
      ("1.0.0-", "must be a semantic version")]),
    (commit_sha(), [SHA],
     [(SHA[:39], "must be a full commit SHA"), (SHA.upper(), "must be a full commit SHA"),
      (SHA[:-1] + "g", "must be a full commit SHA")]),
    (slug(), ["payments", "checkout-api", "a", "a1", "x" * 63],
     [("Payments", "must be a lowercase slug"), ("-x", "must be a lowercase slug"),
      ("x-", "must be a lowercase slug"), ("1x", "must be a lowercase slug"), ("a_b", "must be a lowercase slug"),
      ("x" * 64, "is too long (maximum is 63 characters, got 64)")]),
]


@pytest.mark.parametrize(("rule", "good", "bad"), CASES, ids=[repr(c[0]) for c in CASES])
def test_validator_accepts_and_rejects(rule: Validator, good: list[Any], bad: list[tuple[Any, str]]) -> None:
    for value in good:
        assert rule(value) is None, f"{rule!r} rejected {value!r}: {rule(value)}"
    for value, expected in bad:
        message = rule(value)
        assert message is not None, f"{rule!r} accepted {value!r}"
        assert expected in message


def test_validators_skip_none_except_presence_rules() -> None:
    for rule in (length(max=1), email(), url(), slug(), semver(), one_of("a")):
        assert rule(None) is None
    assert required()(None) == not_blank()(None) == "can't be blank"


def test_validators_have_readable_reprs() -> None:
    assert repr(length(max=63)) == "length(min=None, max=63)"
    assert repr(slug(max_length=24)) == "slug(max_length=24)"
    assert repr(one_of("a", "b")) == "one_of('a', 'b')"


TYPE_CASES: list[tuple[peewee.Field, list[Any], list[tuple[Any, str]]]] = [
    (peewee.IntegerField(), [0, -(2**31), 2**31 - 1],
     [("12", "must be an integer"), (True, "must be an integer"), (1.5, "must be an integer"),
      (2**31, "must be a 32-bit integer"), (10**5000, "(got <an integer of 16610 bits>)")]),
    (peewee.BigIntegerField(), [2**63 - 1, -(2**63)], [(2**63, "must be a 64-bit integer"), ("1", "integer")]),
    (peewee.SmallIntegerField(), [2**15 - 1], [(2**15, "must be a 16-bit integer")]),
    (peewee.FloatField(), [1.5, 2, decimal.Decimal("1.1")],
     [(math.nan, "must be a finite number"), (math.inf, "must be a finite number"),
      (-math.inf, "must be a finite number"), ("1.5", "must be a number"), (False, "must be a number")]),
    (peewee.CharField(max_length=5), ["", "abcde"],
     [("abcdef", "is too long (maximum is 5 characters, got 6)"), ("a\x00b", "NUL byte"), (5, "must be text")]),
    (peewee.TextField(), ["x" * 100_000], [("\x00", "NUL byte"), (b"bytes", "must be text")]),
    (peewee.BooleanField(), [True, False], [(1, "must be true or false"), ("true", "must be true or false")]),
    (peewee.UUIDField(), [uuid.uuid4(), str(uuid.uuid4())], [("not-a-uuid", "must be a UUID")]),
    (peewee.DateTimeField(), [datetime.datetime(2026, 1, 1), datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
                              datetime.datetime(1, 1, 1, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=10))),
                              datetime.datetime(9999, 12, 31, 23, 59, 59, 999999)],
     [("2026-01-01", "must be a date and time"), (0, "must be a date and time"),
      (datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=14))), "outside years 1 to 9999"),
      (datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.timezone(-datetime.timedelta(hours=1))),
       "once converted to UTC")]),
    (peewee.DecimalField(), [decimal.Decimal("1.5")], [(decimal.Decimal("sNaN"), "must be a finite number")]),
]


@pytest.mark.parametrize(("field", "good", "bad"), TYPE_CASES, ids=[type(c[0]).__name__ for c in TYPE_CASES])
def test_type_checks_keep_only_what_postgres_keeps(field: peewee.Field, good: list[Any],
                                                   bad: list[tuple[Any, str]]) -> None:
    for value in good:
        assert field_type_error(field, value) is None, value
    for value, expected in bad:
        message = field_type_error(field, value)
        assert message is not None, f"{type(field).__name__} accepted {value!r}"
        assert expected in message
