"""The curated public API: complete, sorted, and every name importable."""

from __future__ import annotations

import inspect

import orm_kit


def test_all_is_sorted_and_unique() -> None:
    assert orm_kit.__all__ == sorted(set(orm_kit.__all__), key=lambda n: (not n.isupper(), n))


def test_all_names_exist() -> None:
    for name in orm_kit.__all__:
        assert getattr(orm_kit, name, None) is not None, name


def test_all_is_complete() -> None:
    public = {name for name, value in vars(orm_kit).items()
              if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"}
    assert public == set(orm_kit.__all__)
