"""What mypy sees of the models is what they are: the platform's, the example app's, and a drifted app caught.

The fields type themselves; what is declared by hand beside them (``<fk>_id`` attributes, backrefs, a
``"self"`` foreign key's annotation, an app's typed accessors for backrefs onto models it does not own)
is checked against the models as they are at run time (:mod:`orm_kit.testing.typecheck`). Nothing in
orm-kit's typing is generated: this is the check that fails when those declarations go stale.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from feature_flags.models import MODELS as FLAG_MODELS
from orm_kit import mypy
from orm_kit.errors import ConfigurationError
from orm_kit.fields import choice_field
from orm_kit.models import MODELS
from orm_kit.query import filters
from orm_kit.testing.typecheck import probe_source, type_problems

from conftest import EXAMPLE

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "setup.cfg"


def test_mypy_sees_the_platforms_models_as_they_are() -> None:
    assert type_problems(MODELS, config_file=CONFIG) == []


def test_mypy_sees_the_example_apps_models_and_their_backrefs_onto_the_platform_as_they_are() -> None:
    probe = probe_source(FLAG_MODELS)
    # service.feature_flags and environment.deploy_windows are reached through the app's typed accessors.
    assert "assert_type(_a4, Backref[_m1, _m0])" in probe.source
    assert "assert_type(row.service_id, uuid.UUID)" in probe.source
    # As the app checks itself: its own pyproject.toml's [tool.mypy] (strict, the plugin), from its folder.
    # (orm_kit comes from the repository here: mypy cannot follow an editable install's import hook.)
    assert type_problems(FLAG_MODELS, config_file=EXAMPLE / "pyproject.toml", mypy_path=[ROOT]) == []


DRIFTED = '''
from __future__ import annotations

from typing import TYPE_CHECKING

import peewee

import orm_kit


class Owner(orm_kit.Model):
    id = peewee.AutoField()
    name = peewee.CharField()


class Node(orm_kit.Model):
    id = peewee.AutoField()
    owner = peewee.ForeignKeyField(Owner, backref="nodes")
    parent = peewee.ForeignKeyField("self", null=True, backref="children")
    kind = orm_kit.choice_field(("leaf", "branch"), max_length=8)

    if TYPE_CHECKING:
        owner_id: str
        children: peewee.ModelSelect[Node]


class Tag(orm_kit.Model):
    node = peewee.ForeignKeyField(Node, backref="tags")
    label = peewee.CharField(null=True)

    if TYPE_CHECKING:
        node_id: int
'''


@pytest.fixture
def drifted(tmp_path: Path) -> Iterator[Path]:
    """An app whose hand-written declarations have drifted from its models (importable, and on mypy's path)."""
    package = tmp_path / "drifted_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(DRIFTED))
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("drifted_app.models", None)
        sys.modules.pop("drifted_app", None)


def test_drifted_declarations_are_each_named_with_the_fix(drifted: Path) -> None:
    from drifted_app.models import Node, Owner, Tag  # written by the fixture

    problems = type_problems([Node, Tag], config_file=CONFIG, mypy_path=[drifted])
    assert problems[0].startswith("Owner.nodes (the backref Node.owner adds): mypy cannot see an attribute added from "
                                  "outside Owner's class; give it a typed accessor beside Node: "
                                  "`nodes_of = backref(Node, Node.owner)`")
    found = "\n".join(problems[1:])
    for expected in [
        # a "self" foreign key without its annotation reads as Any
        'Node.parent: Expression is of type "Any", not "Node | None"  [assert-type]; annotate it: '
        '`parent: peewee.ForeignKeyField[Node | None] = peewee.ForeignKeyField("self", ...)`',
        'Node.parent_id: "Node" has no attribute "parent_id"; maybe "parent"?  [attr-defined]; declare '
        "`parent_id: int | None` under `if TYPE_CHECKING:` in Node",
        # a closed set whose values are not a Literal's reads as str
        "Node.kind: Expression is of type \"str\", not \"Literal['leaf', 'branch']\"  [assert-type]; give "
        "choice_field the values of a Literal",
        # declared, but not what the model holds
        'Node.owner_id: Expression is of type "str", not "int"  [assert-type]; declare `owner_id: int`',
        # peewee's implicit key, which mypy cannot see
        'Tag.id: "Tag" has no attribute "id"  [attr-defined]; declare `id = peewee.AutoField()`',
        "Node.tags: \"Node\" has no attribute \"tags\"  [attr-defined]; declare `tags: peewee.ModelSelect[Tag]` under "
        "`if TYPE_CHECKING:` in Node (the backref of Tag.node)",
    ]:
        assert expected in found, f"{expected!r} not in:\n{found}"
    assert len(problems) == 7, "\n".join(problems)
    assert Owner.nodes  # the backref is there at run time, as the first problem says


def test_the_plugin_types_the_filter_languages_operators() -> None:
    # A new operator in orm_kit.query.filters must be typed by the plugin too (it keeps its own list).
    assert sorted(mypy.TYPED_OPERATORS) == sorted(filters.OPERATORS)
    assert set(mypy._TEXT_OPERATORS) == set(filters._TEXT_OPERATORS)
    assert set(mypy._LISTS) == set(filters._LIST_OPERATORS)


def test_choice_field_is_peeweees_char_field_holding_its_values() -> None:
    field = choice_field(("leaf", "branch"), max_length=8, default="leaf")
    assert type(field) is peewee.CharField
    assert (field.max_length, field.default, field.null) == (8, "leaf", False)
    assert field.choices == [("leaf", "leaf"), ("branch", "branch")]
    assert choice_field(("a",), null=True).null is True


@pytest.mark.parametrize(("values", "kwargs", "message"), [
    (("leaf", "branch"), {"default": "root"}, "choice_field default 'root' is not one of leaf, branch"),
    (("leaf", "branches"), {"max_length": 6}, "choice_field value 'branches' is longer than max_length=6"),
    ((), {}, "choice_field takes a non-empty sequence of strings (got ())"),
])
def test_choice_field_refuses_values_its_column_cannot_hold(values: tuple[str, ...], kwargs: dict[str, object],
                                                           message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        choice_field(values, **kwargs)
    assert str(raised.value).startswith(message)
