"""Compiled validation gives exactly the errors the rule-by-rule validation gave, for any data (Hypothesis).

``reference_check_data`` below is ``Model.check_data`` as it was before the rules were compiled, field
kinds checked by ``isinstance`` chains and validators called one by one. The compiled form
(``orm_kit.validation.ModelRules``) and the row checker bulk paths use must agree with it on every
model of the platform, whole rows and partial ones, good values and bad.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import Any

import peewee
from hypothesis import given, settings
from hypothesis import strategies as st

from orm_kit.fields import out_of_range
from orm_kit.model import Model
from orm_kit.models import MODELS, Deployment, Team
from orm_kit.validation import BLANK, _int_error, _shown, _text_error, field_type_error

SETTINGS = settings(max_examples=300, deadline=None)

_INT_BITS = ((peewee.SmallIntegerField, 16), (peewee.BigAutoField, 64), (peewee.BigIntegerField, 64),
             (peewee.IntegerField, 32))


def reference_type_error(field: peewee.Field, value: Any) -> str | None:
    if isinstance(field, peewee.ForeignKeyField):
        if isinstance(value, peewee.Model):
            if isinstance(value, field.rel_model):
                return None
            given = type(value).__name__
            return (f"must be a {field.rel_model.__name__} or its {field.rel_field.name} "
                    f"(got {'an' if given[0] in 'AEIOU' else 'a'} {given}, a row of another table)")
        return reference_type_error(field.rel_field, value)
    if isinstance(field, peewee.IntegerField):
        for kind, bits in _INT_BITS:
            if isinstance(field, kind):
                return _int_error(value, bits)
    if isinstance(field, peewee.FloatField | peewee.DecimalField):
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return f"must be a number (got {_shown(value)})"
        finite = value.is_finite() if isinstance(value, decimal.Decimal) else not isinstance(value, float) or \
            math.isfinite(value)
        if not finite:
            return f"must be a finite number (got {value})"
        return None
    if isinstance(field, peewee.BooleanField):
        return None if isinstance(value, bool) else f"must be true or false (got {_shown(value)})"
    if isinstance(field, peewee.UUIDField):
        if isinstance(value, uuid.UUID):
            return None
        try:
            if isinstance(value, str):
                uuid.UUID(value)
                return None
        except ValueError:
            pass
        return f"must be a UUID (got {_shown(value)})"
    if isinstance(field, peewee.DateTimeField):
        if isinstance(value, datetime.datetime):
            return out_of_range(value)
        return f"must be a date and time (got {_shown(value)})"
    if isinstance(field, peewee.DateField):
        ok = isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
        return None if ok else f"must be a date (got {_shown(value)})"
    if isinstance(field, peewee.CharField):
        return _text_error(value, field.max_length)
    if isinstance(field, peewee.TextField):
        return _text_error(value, None)
    return None


def reference_check_data(cls: type[Model], data: dict[str, Any], *, partial: bool = False,
                         instance: Model | None = None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    rules = cls.__orm_kit_field_rules__
    meta = cls._meta
    for field in meta.sorted_fields:
        name = field.name
        if name in data:
            value = data[name]
        elif partial or field.null or field in meta.defaults or field is meta.primary_key:
            continue
        else:
            value = None
        if isinstance(value, peewee.Node) and not isinstance(value, peewee.Model):
            continue
        if value is None:
            if instance is not None and instance.__rel__.get(name) is not None:
                continue
            presence = [m for rule in rules.get(name, ()) if not rule.skip_none and (m := rule(None))]
            if not field.null and not (field is meta.primary_key and meta.auto_increment):
                presence = presence or [BLANK]
            errors.update({name: presence} if presence else {})
            continue
        problem = reference_type_error(field, value)
        if problem is not None:
            errors.setdefault(name, []).append(problem)
            continue
        for rule in rules.get(name, ()):
            message = rule(value)
            if message is not None:
                errors.setdefault(name, []).append(message)
    if not partial or instance is not None:
        subject = instance if instance is not None else cls._from_data(data)
        for target, method in cls.__orm_kit_record_rules__:
            if target in errors or (partial and target not in data):
                continue
            message = getattr(subject, method)()
            if message is not None:
                errors.setdefault(target, []).append(message)
    return errors


UTC = datetime.UTC
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.decimals(allow_nan=True),
    st.text(max_size=70), st.text(alphabet="abcdefghij0123456789-", max_size=70),
    st.sampled_from(["production", "success", "critical", "sev1", "runtime", "manual", "openapi", "available",
                     "1.4.2", "a" * 40, "team@example.com", "https://example.com/x", "\x00", "\ud800", "x" * 300,
                     str(uuid.UUID(int=5)), uuid.UUID(int=5).hex, "not a uuid"]),
    st.uuids(), st.datetimes(timezones=st.sampled_from([None, UTC, datetime.timezone(datetime.timedelta(hours=14)),
                                                        datetime.timezone(-datetime.timedelta(hours=14))])),
    st.dates(), st.just(peewee.SQL("1")), st.builds(lambda: Team(id=3, name="t")),
    st.builds(lambda: Deployment(id=uuid.UUID(int=9))))


@st.composite
def data_for(draw: st.DrawFn, model: type[Model]) -> dict[str, Any]:
    names = [f.name for f in model._meta.sorted_fields]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    return {name: draw(ANY_VALUE) for name in chosen}


@SETTINGS
@given(st.data())
def test_check_data_equals_the_rule_by_rule_check(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(MODELS))
    values = data.draw(data_for(model))
    partial = data.draw(st.booleans())
    assert model.check_data(values, partial=partial) == reference_check_data(model, values, partial=partial)


@SETTINGS
@given(st.data())
def test_the_row_checker_equals_check_data(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(MODELS))
    values = data.draw(data_for(model))
    names = list(values)
    check = model.row_checker(names)
    assert check(tuple(values[n] for n in names)) == (reference_check_data(model, values) or None)


@SETTINGS
@given(value=ANY_VALUE, model=st.sampled_from(MODELS))
def test_type_checks_equal_the_isinstance_chain(value: Any, model: type[Model]) -> None:
    for field in model._meta.sorted_fields:
        assert field_type_error(field, value) == reference_type_error(field, value)


def test_a_foreign_key_given_as_text_is_parsed_once_and_still_checked() -> None:
    check = Deployment.row_checker(["service", "environment", "status"])
    good = str(uuid.UUID(int=7))
    assert check((good, 1, "success")) is None
    assert check((good, 1, "success")) is None  # remembered: no parse
    assert check(("not-a-uuid", 1, "success")) == {"service": ["must be a UUID (got 'not-a-uuid')"]}
    assert check((good, "1", "done")) == {"environment": ["must be an integer (got '1')"],
                                          "status": ["must be one of created, running, success, failed, canceled, "
                                                     "skipped, blocked (got 'done')"]}


def test_a_model_without_cross_field_rules_builds_no_record() -> None:
    from orm_kit.models import Release

    built: list[object] = []
    original = Release._from_data

    def spy(data: Any) -> Model:
        built.append(data)
        return original(data)

    Release._from_data = spy  # type: ignore[method-assign]
    try:
        check = Release.row_checker(["service", "version", "commit_sha", "ref"])
        assert check((uuid.UUID(int=1), "1.0.0", "a" * 40, "main")) is None
        assert Release.check_data({"service": uuid.UUID(int=1), "version": "1.0.0", "commit_sha": "a" * 40,
                                   "ref": "main"}) == {}
    finally:
        del Release._from_data
    assert built == []
    assert Deployment.__orm_kit_record_rules__  # the other kind: its rules need a record


def test_a_cross_field_rule_leaves_values_of_the_wrong_kind_to_the_type_checks() -> None:
    from orm_kit.models import Incident

    # Before: the time rule compared False with an SQL expression and crashed on False.isoformat().
    errors = Incident.check_data({"opened_at": False, "resolved_at": peewee.SQL("CURRENT_TIMESTAMP")})
    assert errors["opened_at"] == ["must be a date and time (got False)"]
    assert "resolved_at" not in errors
