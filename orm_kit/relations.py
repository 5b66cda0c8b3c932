"""Typed backrefs that one model adds to another, for models mypy cannot see from the other side.

    class FeatureFlag(orm_kit.Model):          # an app's model, pointing at a platform model
        service = peewee.ForeignKeyField(Service, backref="feature_flags", on_delete="CASCADE")

    flags_of = backref(FeatureFlag, FeatureFlag.service)   # Backref[Service, FeatureFlag]
    flags_of(service)                          # service.feature_flags, typed ModelSelect[FeatureFlag]

peewee adds ``service.feature_flags`` when ``FeatureFlag`` is defined, but mypy only knows the
attributes ``Service``'s own class body declares, and an application cannot edit the platform's
class. A model can declare its *own* backrefs under ``if TYPE_CHECKING:`` (the platform's models do);
for a backref added from outside, :func:`backref` gives a typed accessor instead: checked when it is
made (the field belongs to the model), and returning exactly what the attribute returns at run time,
typed as the platform types its own backrefs (``ModelSelect``; after ``prefetch`` peewee puts a list
of the rows there, which iterates the same).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

import peewee

from orm_kit.errors import ArgumentTypeError, ConfigurationError

__all__ = ["Backref", "backref"]

ChildT = TypeVar("ChildT", bound=peewee.Model)
ParentT = TypeVar("ParentT", bound=peewee.Model)


class Backref(Generic[ParentT, ChildT]):
    """The rows of ``model`` whose ``field`` points at a given ``ParentT`` row: a typed backref."""

    def __init__(self, model: type[ChildT], field: peewee.ForeignKeyField[Any]) -> None:
        if field.model is not model and not issubclass(model, field.model):
            raise ConfigurationError(f"{field.model.__name__}.{field.name} is not a field of {model.__name__}: "
                                     f"pass {model.__name__}.<its foreign key>")
        self.model = model
        self.field = field
        self.name: str | None = field.backref if field.backref and field.backref != "+" else None

    def __call__(self, row: ParentT) -> peewee.ModelSelect[ChildT]:
        """``row.<backref>``: the rows pointing at ``row``."""
        if not isinstance(row, self.field.rel_model):
            raise ArgumentTypeError(f"{self.model.__name__}.{self.field.name} points at "
                                    f"{self.field.rel_model.__name__}, not {type(row).__name__}; pass a "
                                    f"{self.field.rel_model.__name__}")
        if self.name is not None:
            found: peewee.ModelSelect[ChildT] = getattr(row, self.name)
            return found
        return self.model.select().where(self.field == row)

    def __repr__(self) -> str:
        return f"backref({self.model.__name__}, {self.model.__name__}.{self.field.name})"


@overload
def backref(model: type[ChildT], field: peewee.ForeignKeyField[ParentT | None]) -> Backref[ParentT, ChildT]: ...


@overload
def backref(model: type[ChildT], field: peewee.ForeignKeyField[ParentT]) -> Backref[ParentT, ChildT]: ...


def backref(model: type[ChildT], field: peewee.ForeignKeyField[Any]) -> Backref[Any, ChildT]:
    """A typed accessor for the backref ``field`` (a foreign key of ``model``) adds to the model it points at."""
    return Backref(model, field)
