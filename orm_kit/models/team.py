"""Teams own services and APIs; a team may sit under a parent team (self-referential one-to-many)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import peewee

from orm_kit.fields import UTCDateTimeField, utcnow
from orm_kit.models._base import PlatformModel
from orm_kit.validation import email, length, slug, validate, validates

if TYPE_CHECKING:
    from orm_kit.models.api import Api
    from orm_kit.models.service import Service

__all__ = ["Team"]


@validate(name=[slug(max_length=63)], display_name=[length(max=255)], email=[email()])
class Team(PlatformModel):
    """A team; ``parent`` (SET NULL on delete) makes the tree, ``children`` walks down it."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=63, unique=True)
    display_name = peewee.CharField(max_length=255, null=True)
    email = peewee.CharField(max_length=254, null=True)
    # "self" is a string to peewee's stubs: the annotation says what reading it gives.
    parent: peewee.ForeignKeyField[Team | None] = peewee.ForeignKeyField("self", null=True, backref="children",
                                                                        on_delete="SET NULL")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        constraints = [peewee.Check('"parent_id" IS NULL OR "parent_id" <> "id"')]

    if TYPE_CHECKING:
        parent_id: int | None
        children: peewee.ModelSelect[Team]
        services: peewee.ModelSelect[Service]
        apis: peewee.ModelSelect[Api]

    @validates("parent")
    def _not_its_own_parent(self) -> str | None:
        parent: Any = self.__data__.get("parent")
        if parent is not None and self.id is not None and parent == self.id:
            return f"cannot be the team itself ({self.name!r})"
        return None
